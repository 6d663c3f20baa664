"""Registration reads a handler once and refuses what it cannot route, at import time."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from mangum_ws import Connection, MangumWS, RegistrationError


class In(BaseModel):
    x: int


class Out(BaseModel):
    y: int


def test_signature_is_read_once() -> None:
    ws = MangumWS()

    @ws.action("a")
    async def a(data: In, conn: Connection) -> Out:
        return Out(y=data.x)

    spec = ws.registry.actions["a"]
    assert (spec.input_param, spec.connection_param) == ("data", "conn")
    assert (spec.input_type, spec.output_type, spec.is_async) == (In, Out, True)


def test_no_input_no_output() -> None:
    ws = MangumWS()

    @ws.action("ping")
    def ping() -> None: ...

    spec = ws.registry.actions["ping"]
    assert spec.input_adapter is None
    assert spec.output_adapter is None
    assert not spec.is_async


def test_explicit_input_and_output_override_annotations() -> None:
    ws = MangumWS()

    @ws.action("raw", input=dict[str, int], output=list[int])
    async def raw(payload: Any) -> Any:
        return list(payload.values())

    spec = ws.registry.actions["raw"]
    assert spec.input_param == "payload"
    assert spec.input_type == dict[str, int]
    assert spec.output_type == list[int]


def test_duplicate_name_fails() -> None:
    ws = MangumWS()
    ws.action("a")(lambda: None)
    with pytest.raises(RegistrationError, match="registered twice"):
        ws.action("a")(lambda: None)


@pytest.mark.parametrize("route", ["$default", "$connect", "$disconnect", ""])
def test_reserved_route_keys_fail(route: str) -> None:
    with pytest.raises(RegistrationError, match="reserved"):
        MangumWS().action("a", route=route)(lambda: None)


def test_a_route_key_bound_twice_fails() -> None:
    ws = MangumWS()
    ws.action("a", route="send")(lambda: None)
    with pytest.raises(RegistrationError, match="bound to both 'a' and 'b'"):
        ws.action("b", route="send")(lambda: None)


def test_unsupported_signatures_fail_with_every_problem_listed() -> None:
    ws = MangumWS()

    async def bad(x: int, *rest: Any, **more: Any) -> None: ...

    with pytest.raises(RegistrationError) as info:
        ws.action("bad")(bad)
    message = str(info.value)
    assert "parameter 'x' is neither the input" in message
    assert "*rest" in message
    assert "*more" in message


def test_unresolvable_annotation_fails_clearly() -> None:
    ws = MangumWS()

    async def f(data: Missing) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(RegistrationError, match="cannot resolve its annotations"):
        ws.action("f")(f)


class Opaque:
    """Not a type Pydantic knows how to validate."""


def test_an_output_pydantic_cannot_handle_fails() -> None:
    async def f() -> Opaque:
        return Opaque()

    with pytest.raises(RegistrationError, match="not a type Pydantic can validate"):
        MangumWS().action("f")(f)


def test_hook_arity_is_checked() -> None:
    ws = MangumWS()
    with pytest.raises(RegistrationError, match="on_message hook"):
        ws.on_message(lambda connection_id: None)
    with pytest.raises(RegistrationError, match="on_connect hook"):
        ws.on_connect(lambda: None)


def test_hooks_get_an_id_or_a_connection_by_annotation() -> None:
    ws = MangumWS()

    @ws.on_connect
    async def by_id(connection_id: str) -> None: ...

    assert ws.registry.on_connect is not None
    assert not ws.registry.on_connect.wants_connection

    @ws.on_connect
    async def by_conn(conn: Connection) -> None: ...

    assert ws.registry.on_connect.wants_connection


def test_events_register_once() -> None:
    ws = MangumWS()
    handle = ws.event("e", Out)
    assert ws.registry.events["e"] is handle
    assert handle.model is Out
    with pytest.raises(RegistrationError, match="registered twice"):
        ws.event("e", Out)
