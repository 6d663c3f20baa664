"""ws.mount: the same handlers on a real uvicorn server, driven by real WebSocket clients."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from mangum_ws import Connection, ConnectionNotReady, MangumWS, Reject
from tests.support.server import serve


class PokeIn(BaseModel):
    name: str
    text: str


class KickIn(BaseModel):
    name: str


class Poked(BaseModel):
    text: str


class Whoami(BaseModel):
    query: dict[str, str]
    authorizer: dict[str, Any]
    source_ip: str | None


class Seen:
    def __init__(self) -> None:
        self.connected: list[Connection] = []
        self.disconnected: list[str] = []
        self.disconnect_codes: list[int] = []
        self.welcome_error: list[BaseException] = []


def build() -> tuple[FastAPI, MangumWS, Seen]:
    app = FastAPI()
    ws = MangumWS()
    seen = Seen()
    names: dict[str, str] = {}
    poked = ws.event("poked", Poked)

    def authorize(conn: Connection) -> dict[str, Any] | None:
        token = conn.query.get("token")
        if token == "forbidden":
            raise Reject(403, "no entry")
        return None if token is None else {"principalId": token, "tier": 2}

    @ws.on_connect
    async def on_connect(conn: Connection) -> None:
        seen.connected.append(conn)
        if conn.query.get("name") == "mallory":
            raise Reject(418, "not you")
        names[conn.query.get("name", "")] = conn.connection_id
        try:
            await conn.push("poked", Poked(text="welcome"))
        except ConnectionNotReady as exc:
            seen.welcome_error.append(exc)

    @ws.on_disconnect
    async def on_disconnect(conn: Connection) -> None:
        seen.disconnected.append(conn.connection_id)
        seen.disconnect_codes.append(conn.request_context["disconnectStatusCode"])

    @ws.action("poke")
    async def poke(data: PokeIn) -> None:
        await poked.emit(Poked(text=data.text), connection_ids={names[data.name]})

    @ws.action("kick")
    async def kick(data: KickIn) -> None:
        await ws.disconnect(names[data.name])

    @ws.action("whoami")
    async def whoami(conn: Connection) -> Whoami:
        return Whoami(
            query=dict(conn.query), authorizer=dict(conn.authorizer), source_ip=conn.source_ip
        )

    app.include_router(ws.router)
    with pytest.warns(DeprecationWarning, match="@ws.authorizer"):  # the old hook still works
        ws.mount(app, path="/", authorizer=authorize)
    return app, ws, seen


@pytest.fixture
def server() -> Iterator[tuple[str, MangumWS, Seen]]:
    app, ws, seen = build()
    with serve(app) as address:
        yield address, ws, seen


def recv(client: ClientConnection) -> Any:
    return json.loads(client.recv(timeout=5))


def test_reply_push_and_authorizer_context(server: tuple[str, MangumWS, Seen]) -> None:
    address, ws, seen = server
    with (
        connect(f"ws://{address}/?token=alice-token&name=alice") as alice,
        connect(f"ws://{address}/?token=bob-token&name=bob") as bob,
    ):
        alice.send(json.dumps({"action": "poke", "id": "1", "data": {"name": "bob", "text": "hi"}}))
        assert recv(alice) == {"type": "result", "id": "1", "action": "poke", "data": None}
        assert recv(bob) == {"type": "event", "event": "poked", "data": {"text": "hi"}}

        alice.send(json.dumps({"action": "whoami", "id": "2"}))
        me = recv(alice)["data"]
        # As on API Gateway: the authorizer context comes back, the query string does not.
        assert me == {
            "query": {},
            "authorizer": {"principalId": "alice-token", "tier": 2},
            "source_ip": "127.0.0.1",
        }
        assert len(ws.gateway.connection_ids) == 2  # type: ignore[attr-defined]
    assert seen.connected[0].query == {"token": "alice-token", "name": "alice"}
    assert seen.connected[0].headers["host"] == address


def test_malformed_frames_get_errors_and_the_socket_stays_open(
    server: tuple[str, MangumWS, Seen],
) -> None:
    address, _, _ = server
    with connect(f"ws://{address}/?token=t&name=n") as client:
        for raw, code in [
            ("{", "bad_request"),
            ("[]", "bad_request"),
            (json.dumps({"action": "nope"}), "unknown_action"),
            (json.dumps({"action": "poke", "data": {}}), "invalid_input"),
            ("[" * 967 + "]" * 967, "bad_request"),
            ('{"action": "whoami", "id": "\\ud800"}', "bad_request"),
            (json.dumps({"action": "x" * 130_000}), "unknown_action"),
        ]:
            client.send(raw)
            assert recv(client)["error"]["code"] == code
        client.send(json.dumps({"action": "whoami", "id": "ok"}))
        assert recv(client)["type"] == "result"


@pytest.mark.parametrize(
    ("message", "code"),
    [(b"\x00\x01", 1003), (json.dumps({"action": "x" * 140_000}), 1009)],
    ids=["binary", "over-128KB"],
)
def test_api_gateway_limits_close_the_socket(
    server: tuple[str, MangumWS, Seen], message: str | bytes, code: int
) -> None:
    address, ws, seen = server
    with connect(f"ws://{address}/?token=t&name=n", max_size=None) as client:
        client.send(message)
        with pytest.raises(ConnectionClosedError) as info:
            recv(client)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == code
    deadline = time.monotonic() + 5
    while not seen.disconnected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(seen.disconnected) == 1  # $disconnect ran, as after every successful $connect
    assert not ws.gateway.sockets.connection_ids  # type: ignore[union-attr]


def test_connect_refusals_carry_their_status(server: tuple[str, MangumWS, Seen]) -> None:
    address, ws, seen = server
    for url, status in [
        (f"ws://{address}/", 401),
        (f"ws://{address}/?token=forbidden", 403),
        (f"ws://{address}/?token=t&name=mallory", 418),
    ]:
        with pytest.raises(InvalidStatus) as info:
            connect(url).close()
        assert info.value.response.status_code == status
    assert [c.query.get("name") for c in seen.connected] == ["mallory"]
    assert not ws.gateway.sockets.connection_ids  # type: ignore[union-attr]


def test_push_to_self_during_connect_is_refused_clearly(
    server: tuple[str, MangumWS, Seen],
) -> None:
    address, _, seen = server
    with connect(f"ws://{address}/?token=t&name=carol") as client:
        client.send(json.dumps({"action": "whoami", "id": "1"}))
        assert recv(client)["type"] == "result"  # no welcome frame arrived first
    assert len(seen.welcome_error) == 1
    assert "during its $connect" in str(seen.welcome_error[0])


def test_disconnect_hook_runs_and_the_id_is_gone(server: tuple[str, MangumWS, Seen]) -> None:
    address, ws, seen = server
    with connect(f"ws://{address}/?token=t&name=dave"):
        pass
    for _ in range(100):
        if seen.disconnected:
            break
        time.sleep(0.02)
    assert seen.disconnected == [seen.connected[0].connection_id]
    assert not ws.gateway.sockets.connection_ids  # type: ignore[union-attr]


def test_internal_routes_refuse_plain_http(
    server: tuple[str, MangumWS, Seen], caplog: pytest.LogCaptureFixture
) -> None:
    address, _, seen = server
    body = json.dumps({"action": "poke", "data": {"name": "x", "text": "spoof"}}).encode()
    for kind in ("connect", "disconnect", "sendmessage"):
        request = urllib.request.Request(
            f"http://{address}/internal/websocket/{kind}/L0SM9cOFvHcCIhw=",
            data=body,
            method="POST",
            headers={"content-type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 404
        info.value.close()
    assert seen.connected == []
    assert seen.disconnected == []


def test_mount_is_a_no_op_with_the_aws_gateway() -> None:
    app = FastAPI()
    routes = len(app.routes)
    MangumWS(endpoint_url="http://127.0.0.1:9").mount(app)
    assert len(app.routes) == routes


def test_handler_crash_is_logged_and_the_connection_survives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, ws = FastAPI(), MangumWS()

    @ws.action("crash")
    async def crash() -> None:
        raise ValueError("kaboom")

    ws.mount(app)
    with (
        caplog.at_level(logging.ERROR, logger="mangum_ws"),
        serve(app) as address,
        connect(f"ws://{address}/") as client,
    ):
        client.send(json.dumps({"action": "crash", "id": "1"}))
        frame = recv(client)
        client.send(json.dumps({"action": "crash", "id": "2"}))
        assert recv(client)["id"] == "2"
    assert frame["error"] == {
        "code": "internal_error",
        "message": "internal error",
        "details": None,
    }
    assert "kaboom" in caplog.text


def test_server_side_disconnect_closes_the_socket(server: tuple[str, MangumWS, Seen]) -> None:
    address, _ws, seen = server
    with (
        connect(f"ws://{address}/?token=t&name=erin") as erin,
        connect(f"ws://{address}/?token=t&name=frank") as frank,
    ):
        frank.send(json.dumps({"action": "kick", "id": "1", "data": {"name": "erin"}}))
        assert recv(frank)["type"] == "result"
        with pytest.raises(ConnectionClosedOK):
            erin.recv(timeout=5)
    erin_id = seen.connected[0].connection_id
    for _ in range(100):
        if erin_id in seen.disconnected:
            break
        time.sleep(0.02)
    assert erin_id in seen.disconnected


def test_mount_gets_the_frame_rule_from_the_emulators_uvicorn_protocol() -> None:
    """ASGI cannot see frames; served with the local API Gateway's protocol class, ws.mount
    closes a 32 KB + 1 frame with 1009 and reports a dropped socket as 1006, as AWS does."""
    from mangum_ws.local.uvicorn_protocol import ApiGatewayWebSocketProtocol

    app, _, seen = build()
    with serve(app, ws=ApiGatewayWebSocketProtocol) as address:
        with connect(f"ws://{address}/?token=t&name=n", max_size=None) as client:
            client.send(json.dumps({"action": "whoami", "id": "1", "pad": "p" * 32_000}))
            assert recv(client)["id"] == "1"
            client.send(json.dumps({"action": "whoami", "id": "2", "pad": "p" * 32_800}))
            with pytest.raises(ConnectionClosedError) as info:
                recv(client)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009
        with connect(f"ws://{address}/?token=t&name=m") as dropped:
            dropped.socket.shutdown(socket.SHUT_RDWR)  # no close frame
            deadline = time.monotonic() + 5
            while len(seen.disconnect_codes) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
    assert seen.disconnect_codes == [1009, 1006]
