"""Wire protocol v1 through the one dispatch function (no sockets, no Lambda)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from mangum_ws import ActionError, Connection, MangumWS
from mangum_ws.dispatch import dispatch
from mangum_ws.limits import MAX_MESSAGE_BYTES


class SendIn(BaseModel):
    room: str
    text: str = Field(max_length=20)


class SendOut(BaseModel):
    message_id: str


class Aliased(BaseModel):
    model_config = {"populate_by_name": True}
    user_name: str = Field(alias="userName")


ws = MangumWS()
calls: list[Any] = []


@ws.action("chat.send")
async def send(data: SendIn, conn: Connection) -> SendOut:
    calls.append((data, conn.connection_id))
    if data.room == "full":
        raise ActionError("room_full", "Room is full", details={"room": data.room})
    if data.room == "boom":
        raise RuntimeError("secret traceback detail")
    return SendOut(message_id=f"m-{data.text}")


@ws.action("sync.echo")
def sync_echo(data: SendIn) -> SendOut:
    calls.append(threading.current_thread() is threading.main_thread())
    return SendOut(message_id=data.text)


@ws.action("bad.output")
async def bad_output() -> SendOut:
    return {"nope": 1}  # type: ignore[return-value]


@ws.action("dict.output")
async def dict_output() -> SendOut:
    return {"message_id": "from-dict"}  # type: ignore[return-value]


@ws.action("no.output")
async def no_output(conn: Connection) -> None:
    calls.append("no.output")


@ws.action("aliased")
async def aliased(data: Aliased) -> Aliased:
    return data


@ws.action("legacy", route="sendmessage")
async def legacy(data: SendIn) -> SendOut:
    return SendOut(message_id="legacy")


@ws.action("literal", output=list[Literal["a", "b"]])
async def literal() -> Any:
    return ["a", "b"]


@ws.action("big.output")
async def big_output() -> SendOut:
    return SendOut(message_id="x" * MAX_MESSAGE_BYTES)


class Many(BaseModel):
    items: list[int]
    tags: dict[str, int] = {}


@ws.action("many")
async def many(data: Many) -> None:
    pass


def run(body: str | None, route_key: str = "$default") -> Any:
    conn = Connection(connection_id="L0SM9cOFvHcCIhw=", sender=ws, route_key=route_key)
    frame = asyncio.run(dispatch(ws.registry, body, conn))
    return None if frame is None else json.loads(frame)


def request(action: Any, data: Any = None, id: str | None = "1", **extra: Any) -> str:
    message: dict[str, Any] = {"action": action, **extra}
    if id is not None:
        message["id"] = id
    if data is not None:
        message["data"] = data
    return json.dumps(message)


def error(code: str, frame: Any) -> dict[str, Any]:
    assert frame["type"] == "error", frame
    assert frame["error"]["code"] == code, frame
    result: dict[str, Any] = frame["error"]
    return result


def test_result_frame() -> None:
    assert run(request("chat.send", {"room": "r", "text": "hi"})) == {
        "type": "result",
        "id": "1",
        "action": "chat.send",
        "data": {"message_id": "m-hi"},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "message is not valid JSON"),
        ("[1, 2]", "message must be a JSON object"),
        ('"text"', "message must be a JSON object"),
        ("", "message must be a JSON object"),
        (None, "message must be a JSON object"),
        ('{"data": {}}', "message needs a string 'action' field"),
        ('{"action": 5}', "message needs a string 'action' field"),
        ('{"action": "chat.send", "id": 7}', "'id' must be a string"),
    ],
)
def test_malformed_messages_get_bad_request(body: str | None, message: str) -> None:
    frame = run(body)
    assert error("bad_request", frame)["message"].startswith(message)


def test_unknown_action_names_it_and_keeps_the_id() -> None:
    frame = run(request("chat.nope", id="x9"))
    assert frame["id"] == "x9"
    assert frame["action"] == "chat.nope"
    assert error("unknown_action", frame)["message"] == "unknown action 'chat.nope'"


def test_invalid_input_gives_pydantic_errors_without_echoing_input() -> None:
    secret = "s3cr3t-" + "x" * 30
    frame = run(request("chat.send", {"room": "r", "text": secret}))
    err = error("invalid_input", frame)
    assert secret not in json.dumps(frame)
    assert err["details"][0]["type"] == "string_too_long"
    assert err["details"][0]["loc"] == ["text"]
    assert "input" not in err["details"][0]
    assert "url" not in err["details"][0]


def test_missing_data_is_validated_as_empty_object() -> None:
    err = error("invalid_input", run(request("chat.send")))
    assert {d["loc"][0] for d in err["details"]} == {"room", "text"}


def test_oversized_reply_becomes_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="mangum_ws"):
        frame = run(request("big.output", {}, id="b1"))
    assert frame == {
        "type": "error",
        "id": "b1",
        "action": "big.output",
        "error": {"code": "internal_error", "message": "internal error", "details": None},
    }
    assert [r.message for r in caplog.records if "128 KB" in r.message] == [
        "the reply of action 'big.output' to connection L0SM9cOFvHcCIhw= is over API "
        "Gateway's 128 KB; the caller got internal_error instead"
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[" * 967 + "]" * 967, "JSON nested deeper than 200 levels"),
        ('{"action": "chat.send", "id": "\\ud800"}', "message is not valid JSON text"),
        ('{"action": "chat.send", "id": "\ud800"}', "message is not valid unicode text"),
        ('{"action": "chat.send", "data": NaN}', "message is not valid JSON"),
    ],
    ids=["deep", "escaped-surrogate", "raw-surrogate", "nan"],
)
def test_input_that_would_crash_a_parser_is_bad_request(body: str, message: str) -> None:
    assert error("bad_request", run(body))["message"].startswith(message)


@pytest.mark.parametrize(
    ("body", "id", "action"),
    [
        ('{"action": "many", "id": "d", "data": ' + "[" * 967 + "]" * 967 + "}", "d", "many"),
        ('{"id": "n", "data": NaN, "action": "many"}', "n", "many"),
        ('{"data": {"id": "inner", "x": "}"}, "id": "outer"', "outer", None),
        ('{"action": "many", "id": "\\ud800"}', None, "many"),
        ('{"action": "\\ud800", "id": "s"}', "s", None),
        ('{"action": "many", "id": "' + "i" * 129 + '", "data": NaN}', None, "many"),
        ("[" * 967 + "]" * 967, None, None),
    ],
    ids=[
        "deep data",
        "NaN",
        "nested id, unterminated",
        "bad id",
        "bad action",
        "long id",
        "not an object",
    ],
)
def test_a_refused_message_is_answered_to_its_id_when_the_id_can_be_read(
    body: str, id: str | None, action: str | None
) -> None:
    frame = run(body)
    assert error("bad_request", frame)
    assert (frame["id"], frame["action"]) == (id, action)


def test_nesting_up_to_the_limit_is_parsed() -> None:
    deep = json.dumps({"action": "many", "id": "d", "data": {"items": [1], "x": [[[[[]]]]]}})
    assert run(deep)["type"] == "result"
    body = '{"action": "many", "id": "d", "data": ' + "[" * 198 + "]" * 198 + "}"
    assert error("invalid_input", run(body))


def test_long_ids_are_refused_and_never_echoed() -> None:
    frame = run(request("chat.send", {"room": "r", "text": "t"}, id="i" * 129))
    assert (
        error("bad_request", frame)["message"] == "'id' must be a string of at most 128 characters"
    )
    assert frame["id"] is None
    assert run(request("chat.send", {"room": "r", "text": "t"}, id="i" * 128))["id"] == "i" * 128


def test_a_long_unknown_action_is_repeated_only_as_a_prefix() -> None:
    frame = run(request("x" * 130_000, id="u"))
    err = error("unknown_action", frame)
    assert err["message"] == f"unknown action {'x' * 64!r}... (130000 characters)"
    assert frame["action"] is None
    assert frame["id"] == "u"
    assert len(json.dumps(frame)) < 300


def test_invalid_input_is_bounded_and_says_how_many_errors_there_were() -> None:
    data = {"items": ["no"] * 25_000, "tags": {"k" * 10_000: "v"}}
    frame = run(request("many", data, id="m"))
    err = error("invalid_input", frame)
    assert err["message"] == "invalid data for 'many': 25001 errors, the first 20 in details"
    assert len(err["details"]) == 20
    assert all(d["loc"][0] == "items" and "input" not in d for d in err["details"])
    assert len(json.dumps(frame).encode()) <= 16 * 1024
    frame = run(request("many", {"items": [], "tags": {"k" * 10_000: "v"}}, id="m"))
    (detail,) = error("invalid_input", frame)["details"]
    assert detail["loc"] == ["tags", "k" * 64 + "..."]
    assert len(json.dumps(frame)) < 1000


def test_action_error_is_typed() -> None:
    err = error("room_full", run(request("chat.send", {"room": "full", "text": "x"})))
    assert err == {"code": "room_full", "message": "Room is full", "details": {"room": "full"}}


def test_handler_crash_is_internal_error_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="mangum_ws"):
        frame = run(request("chat.send", {"room": "boom", "text": "x"}))
    assert error("internal_error", frame)["message"] == "internal error"
    assert "secret traceback detail" not in json.dumps(frame)
    (record,) = caplog.records  # exactly one record, with the traceback
    assert record.exc_info is not None
    assert "secret traceback detail" in caplog.text
    assert frame["id"] == "1"


def test_output_that_does_not_fit_is_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="mangum_ws"):
        frame = run(request("bad.output"))
    error("internal_error", frame)
    assert "does not fit its output" in caplog.text


def test_output_dict_is_validated_into_the_model() -> None:
    assert run(request("dict.output"))["data"] == {"message_id": "from-dict"}


def test_sync_handlers_run_off_the_event_loop_thread() -> None:
    calls.clear()
    assert run(request("sync.echo", {"room": "r", "text": "t"}))["data"] == {"message_id": "t"}
    assert calls == [False]


def test_no_output_answers_only_when_the_caller_gave_an_id() -> None:
    assert run(request("no.output", id=None)) is None
    assert run(request("no.output", id="ack")) == {
        "type": "result",
        "id": "ack",
        "action": "no.output",
        "data": None,
    }


def test_aliases_are_the_wire_names() -> None:
    assert run(request("aliased", {"userName": "ann"}))["data"] == {"userName": "ann"}


def test_custom_route_key_selects_its_action() -> None:
    frame = run(request("sendmessage", {"room": "r", "text": "x"}), route_key="sendmessage")
    assert frame["action"] == "legacy"
    assert frame["data"] == {"message_id": "legacy"}


def test_explicit_output_type() -> None:
    assert run(request("literal"))["data"] == ["a", "b"]


def test_keepalive_is_read_and_not_answered() -> None:
    assert run('{"action": "$keepalive"}') is None
