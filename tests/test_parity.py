"""One corpus of frames through all three paths: Lambda events, ws.mount's socket, and the local
API Gateway in front of the Lambda handler. Each client must see the same frames and the same
close codes, whatever path carries it: the event core decides, the adapters only carry."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from mangum import Mangum
from pydantic import BaseModel, Field
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from mangum_ws import ActionError, Connection, ConnectRequest, Forbidden, MangumWS, Principal
from mangum_ws.local import LocalApiGateway
from tests.support.events import (
    FakeLambdaContext,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
)
from tests.support.management_api import ManagementApi
from tests.support.messages import call
from tests.support.server import free_port, serve


class JoinIn(BaseModel):
    name: str = Field(min_length=1, max_length=10)


class JoinOut(BaseModel):
    name: str
    members: list[str]


class PokeIn(BaseModel):
    to: str
    text: str


class Poked(BaseModel):
    by: str
    text: str


class Echo(BaseModel):
    text: str
    tier: int | None = None


class Numbers(BaseModel):
    items: list[int]


class Big(BaseModel):
    blob: str


def chat_app(ws: MangumWS, disconnects: list[int]) -> FastAPI:
    app = FastAPI()
    names: dict[str, str] = {}
    poked = ws.event("poked", Poked)

    @ws.authorizer()  # every path runs it before $connect; its context rides on every event
    def sign_in(request: ConnectRequest) -> Principal:
        return Principal("user", {"tier": 3})

    @ws.on_disconnect
    async def gone(conn: Connection) -> None:
        disconnects.append(int(conn.request_context.get("disconnectStatusCode", 0)))

    @ws.action("join")
    async def join(data: JoinIn, conn: Connection) -> JoinOut:
        names[data.name] = conn.connection_id
        return JoinOut(name=data.name, members=sorted(names))

    @ws.action("poke")
    async def poke(data: PokeIn, conn: Connection) -> None:
        me = next(name for name, cid in names.items() if cid == conn.connection_id)
        if data.to not in names:
            raise ActionError("no_such_member", f"{data.to} is not here", details={"to": data.to})
        await poked.emit(Poked(by=me, text=data.text), connection_ids={names[data.to]})

    @ws.action("echo")
    def echo(data: Echo, conn: Connection) -> Echo:
        tier = conn.authorizer.get("tier")
        return Echo(text=data.text, tier=int(tier) if tier is not None else None)

    @ws.action("sum")
    async def add(data: Numbers) -> int:
        return sum(data.items)

    @ws.action("boom")
    async def boom() -> Echo:
        raise RuntimeError("never shown to clients")

    @ws.action("big")
    async def big() -> Big:
        return Big(blob="b" * 140_000)

    def staff_only(conn: Connection) -> None:  # a guard: the authorizer's context says "user"
        if conn.principal != "staff":
            raise Forbidden(f"{conn.principal} is not staff")

    @ws.action("staff", dependencies=[Depends(staff_only)])
    async def staff() -> Echo:
        return Echo(text="never")

    @ws.action("legacy", route="sendmessage")
    async def legacy(data: Echo) -> Echo:
        return Echo(text=data.text.upper())

    app.include_router(ws.router)
    return app


# (who, raw text message). Every one of them is under 128 KB: API Gateway delivers it.
SCRIPT: list[tuple[str, str]] = [
    ("alice", call("join", "1", {"name": "alice"})),
    ("bob", call("join", "1", {"name": "bob"})),
    ("alice", call("echo", "2", {"text": "hi"})),
    ("alice", call("echo", "3", {"text": 5})),
    ("alice", call("join", data={"name": "much-too-long-name"})),
    ("alice", call("dance", "4")),
    ("alice", "this is not json"),
    ("alice", "[1, 2, 3]"),
    ("alice", json.dumps({"id": "5", "data": {}})),
    ("alice", call("boom", "6")),
    ("alice", call("poke", "7", {"to": "bob", "text": "psst"})),
    ("bob", call("poke", data={"to": "alice", "text": "hey"})),
    ("bob", call("poke", "8", {"to": "carol", "text": "?"})),
    ("bob", call("sendmessage", "9", {"text": "legacy"})),
    # The rows of issue 11's table: none of them may break a connection or lose a reply.
    ("bob", "[" * 967 + "]" * 967),
    ("bob", '{"action": "echo", "id": "\\ud800"}'),
    ("bob", call("sum", "10", {"items": ["x"] * 25_000})),
    ("bob", call("y" * 127_000, "11")),
    ("bob", call("big", "12")),
    ("bob", call("echo", "i" * 129, {"text": "long id"})),
    ("alice", call("sum", "13", {"items": [1, 2, 3]})),
    ("bob", call("staff", "14")),
]
IDS = {"alice": "AaaaaaaaaaaaaaA=", "bob": "BbbbbbbbbbbbbbB="}
AUTHORIZER = {"principalId": "user", "tier": 3}
Transcript = list[dict[str, list[Any]]]


def route_key(raw: str) -> str:
    try:
        action = json.loads(raw).get("action")
    except (ValueError, AttributeError, RecursionError):
        return "$default"
    return "sendmessage" if action == "sendmessage" else "$default"


def lambda_transcript(mgmt_api: ManagementApi, route_responses: bool) -> Transcript:
    """Per step, the frames each client received: route response bodies and posts."""
    ws = MangumWS(endpoint_url=mgmt_api.url, route_responses=route_responses)
    disconnects: list[int] = []
    handler = Mangum(chat_app(ws, disconnects), custom_handlers=[ws.handler])
    ctx = FakeLambdaContext()
    allowed = handler(authorizer_event(), ctx)  # API Gateway's authorizer call, then $connect
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert {**allowed["context"], "principalId": allowed["principalId"]} == AUTHORIZER
    for who, cid in IDS.items():
        connected = handler(connect_event(cid, authorizer=AUTHORIZER), ctx)
        assert connected["statusCode"] == 200, who
    steps: Transcript = []
    for who, raw in SCRIPT:
        before = len(mgmt_api.posts)
        event = message_event(
            raw=raw, connection_id=IDS[who], route_key=route_key(raw), authorizer=AUTHORIZER
        )
        response = handler(event, ctx)
        assert response["statusCode"] == 200
        frames: dict[str, list[Any]] = {name: [] for name in IDS}
        if "body" in response:
            frames[who].append(json.loads(response["body"]))
        for cid, data in mgmt_api.posts[before:]:
            frames[next(n for n, i in IDS.items() if i == cid)].append(json.loads(data))
        steps.append(frames)
    # API Gateway closes the socket on a message over 128 KB instead of invoking the function;
    # an event that carries one anyway is refused, and nobody gets a frame.
    before = len(mgmt_api.posts)
    oversized = message_event(
        raw=call("echo", "x", {"text": "x" * 131_072}), connection_id=IDS["bob"]
    )
    assert handler(oversized, ctx)["statusCode"] == 413
    assert len(mgmt_api.posts) == before
    for cid in IDS.values():
        assert handler(disconnect_event(cid, authorizer=AUTHORIZER), ctx)["statusCode"] == 200
    return steps


def socket_transcript(url: str, counts: list[dict[str, int]]) -> Transcript:
    steps: Transcript = []
    with connect(url, max_size=None) as alice, connect(url, max_size=None) as bob:
        clients = {"alice": alice, "bob": bob}
        for (who, raw), expected in zip(SCRIPT, counts, strict=True):
            # Over 32 KB, a message goes as several frames: API Gateway closes on a bigger one.
            clients[who].send(_fragments(raw) if len(raw) > 30_000 else raw)
            steps.append(
                {
                    name: [json.loads(client.recv(timeout=10)) for _ in range(expected[name])]
                    for name, client in clients.items()
                }
            )
        # Nothing unexpected is still in flight: the next frame each client gets is this one.
        for client in clients.values():
            client.send(call("echo", "flush", {"text": "."}))
            assert json.loads(client.recv(timeout=10))["id"] == "flush"
    return steps


def close_code(url: str, send: Callable[[ClientConnection], None]) -> int | None:
    """Open a connection, send, and return the code the server closed it with (None: open)."""
    with connect(url, max_size=None) as client:
        try:
            send(client)
            client.send(call("echo", "after", {"text": "."}))
            while json.loads(client.recv(timeout=10)).get("id") != "after":
                pass
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else 1006
    return None


# Sent on a fresh connection each: API Gateway's limits, which close the socket.
LIMITS: dict[str, Callable[[ClientConnection], None]] = {
    "binary frame": lambda c: c.send(b"\x00\x01"),
    "128 KB + 1 message, in 32 KB frames": lambda c: c.send(_fragments(padded(131_073))),
    "32 KB + 1 frame": lambda c: c.send(padded(32_769)),
}


def padded(size: int) -> str:
    """An echo call of exactly ``size`` bytes."""
    text = call(
        "echo", "padded", {"text": "x" * (size - len(call("echo", "padded", {"text": ""})))}
    )
    assert len(text.encode()) == size
    return text


def _fragments(text: str) -> Iterator[str]:
    for start in range(0, len(text), 30_000):
        yield text[start : start + 30_000]


@contextmanager
def mounted(disconnects: list[int]) -> Iterator[str]:
    ws = MangumWS()
    app = chat_app(ws, disconnects)
    ws.mount(app)
    with serve(app) as address:
        yield f"ws://{address}/"


@contextmanager
def emulated(disconnects: list[int], route_responses: bool) -> Iterator[str]:
    port = free_port()
    ws = MangumWS(endpoint_url=f"http://127.0.0.1:{port}", route_responses=route_responses)
    handler = Mangum(chat_app(ws, disconnects), custom_handlers=[ws.handler])
    with LocalApiGateway(handler, port=port) as gateway:
        yield gateway.ws_url


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("route_responses", [False, True], ids=["posted", "route-responses"])
@pytest.mark.parametrize("path", ["ws.mount", "local API Gateway"])
def test_every_path_gives_each_client_the_same_frames_and_close_codes(
    mgmt_api: ManagementApi,
    caplog: pytest.LogCaptureFixture,
    route_responses: bool,
    path: str,
) -> None:
    with caplog.at_level(logging.WARNING, logger="mangum_ws"):
        on_lambda = lambda_transcript(mgmt_api, route_responses)
    # The crash leaves one record with its traceback; the oversized reply one line; the
    # oversized event one line. Nothing else is logged above INFO.
    assert [(r.levelname, r.exc_info is not None) for r in caplog.records] == [
        ("ERROR", True),
        ("ERROR", False),
        ("WARNING", False),
    ]
    counts = [{name: len(frames) for name, frames in step.items()} for step in on_lambda]
    disconnects: list[int] = []
    server = mounted(disconnects) if path == "ws.mount" else emulated(disconnects, route_responses)
    with server as url:
        assert socket_transcript(url, counts) == on_lambda
        codes = {case: close_code(url, send) for case, send in LIMITS.items()}
        wait_for(lambda: len(disconnects) == 2 + len(LIMITS))
    # ws.mount runs under ASGI, which hands it whole messages: it cannot see a frame's size.
    frame_rule = None if path == "ws.mount" else 1009
    assert codes == {
        "binary frame": 1003,
        "128 KB + 1 message, in 32 KB frames": 1009,
        "32 KB + 1 frame": frame_rule,
    }
    # $disconnect ran once for every connection, with the code the socket was closed with.
    assert sorted(disconnects) == sorted([1000, 1000, 1003, 1009, frame_rule or 1000])

    kinds = {
        (f["type"], f.get("error", {}).get("code"))
        for s in on_lambda
        for fs in s.values()
        for f in fs
    }
    assert kinds == {
        ("result", None),
        ("event", None),
        ("error", "invalid_input"),
        ("error", "unknown_action"),
        ("error", "bad_request"),
        ("error", "internal_error"),
        ("error", "no_such_member"),
        ("error", "forbidden"),
    }
    assert on_lambda[11]["alice"] == [
        {"type": "event", "event": "poked", "data": {"by": "bob", "text": "hey"}}
    ]
    assert on_lambda[2]["alice"][0]["data"] == {"text": "hi", "tier": 3}
    # Every reply with an id carries it, and none is over 16 KB but the results.
    replies = [f for s in on_lambda for fs in s.values() for f in fs]
    assert all(len(json.dumps(f)) < 16 * 1024 for f in replies)
    assert [(f["id"], f["error"]["code"]) for f in replies if f["type"] == "error"] == [
        ("3", "invalid_input"),
        (None, "invalid_input"),
        ("4", "unknown_action"),
        (None, "bad_request"),  # not JSON
        (None, "bad_request"),  # not an object
        ("5", "bad_request"),  # no action
        ("6", "internal_error"),  # the crash
        ("8", "no_such_member"),
        (None, "bad_request"),  # nested 967 deep
        (None, "bad_request"),  # a lone surrogate: the id itself is what is wrong
        ("10", "invalid_input"),  # 25,000 invalid items, 20 of them in details
        ("11", "unknown_action"),  # a 127 KB name, repeated as a 64-character prefix
        ("12", "internal_error"),  # a 140 KB result
        (None, "bad_request"),  # an id of 129 characters is never echoed
        ("14", "forbidden"),  # a Depends guard
    ]
