"""The same conversation through a real socket (ws.mount) and through Lambda events must look
identical to the clients: one dispatch serves both paths."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel, Field
from websockets.sync.client import connect

from mangum_ws import ActionError, Connection, MangumWS
from tests.support.events import FakeLambdaContext, connect_event, disconnect_event, message_event
from tests.support.management_api import ManagementApi
from tests.support.server import serve


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


def chat_app(ws: MangumWS) -> FastAPI:
    app = FastAPI()
    names: dict[str, str] = {}
    poked = ws.event("poked", Poked)

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

    @ws.action("boom")
    async def boom() -> Echo:
        raise RuntimeError("never shown to clients")

    @ws.action("legacy", route="sendmessage")
    async def legacy(data: Echo) -> Echo:
        return Echo(text=data.text.upper())

    app.include_router(ws.router)
    return app


# (who, raw frame). Each is valid JSON unless noted; the route key is API Gateway's selection.
SCRIPT: list[tuple[str, str]] = [
    ("alice", json.dumps({"action": "join", "id": "1", "data": {"name": "alice"}})),
    ("bob", json.dumps({"action": "join", "id": "1", "data": {"name": "bob"}})),
    ("alice", json.dumps({"action": "echo", "id": "2", "data": {"text": "hi"}})),
    ("alice", json.dumps({"action": "echo", "id": "3", "data": {"text": 5}})),
    ("alice", json.dumps({"action": "join", "data": {"name": "much-too-long-name"}})),
    ("alice", json.dumps({"action": "dance", "id": "4"})),
    ("alice", "this is not json"),
    ("alice", "[1, 2, 3]"),
    ("alice", json.dumps({"id": "5", "data": {}})),
    ("alice", json.dumps({"action": "boom", "id": "6"})),
    ("alice", json.dumps({"action": "poke", "id": "7", "data": {"to": "bob", "text": "psst"}})),
    ("bob", json.dumps({"action": "poke", "data": {"to": "alice", "text": "hey"}})),
    ("bob", json.dumps({"action": "poke", "id": "8", "data": {"to": "carol", "text": "?"}})),
    ("bob", json.dumps({"action": "sendmessage", "id": "9", "data": {"text": "legacy"}})),
    ("bob", json.dumps({"action": "echo", "id": "x" * 10, "data": {"text": "y" * 131_072}})),
]
IDS = {"alice": "AaaaaaaaaaaaaaA=", "bob": "BbbbbbbbbbbbbbB="}
AUTHORIZER = {"principalId": "user", "tier": 3}


def route_key(raw: str) -> str:
    try:
        action = json.loads(raw).get("action")
    except (ValueError, AttributeError):
        return "$default"
    return "sendmessage" if action == "sendmessage" else "$default"


def lambda_transcript(mgmt_api: ManagementApi, route_responses: bool) -> list[dict[str, list[Any]]]:
    """Per step, the frames each client received: route response bodies and posts."""
    ws = MangumWS(endpoint_url=mgmt_api.url, route_responses=route_responses)
    handler = Mangum(chat_app(ws), custom_handlers=[ws.handler])
    ctx = FakeLambdaContext()
    for who, cid in IDS.items():
        connected = handler(connect_event(cid, authorizer=AUTHORIZER), ctx)
        assert connected["statusCode"] == 200, who
    steps: list[dict[str, list[Any]]] = []
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
    for cid in IDS.values():
        assert handler(disconnect_event(cid, authorizer=AUTHORIZER), ctx)["statusCode"] == 200
    return steps


def socket_transcript(expected_counts: list[dict[str, int]]) -> list[dict[str, list[Any]]]:
    ws = MangumWS()
    app = chat_app(ws)
    ws.mount(app, authorizer=lambda conn: AUTHORIZER)
    steps: list[dict[str, list[Any]]] = []
    with (
        serve(app) as address,
        connect(f"ws://{address}/") as alice,
        connect(f"ws://{address}/") as bob,
    ):
        clients = {"alice": alice, "bob": bob}
        for (who, raw), counts in zip(SCRIPT, expected_counts, strict=True):
            clients[who].send(raw)
            steps.append(
                {
                    name: [json.loads(client.recv(timeout=5)) for _ in range(counts[name])]
                    for name, client in clients.items()
                }
            )
        # Nothing unexpected is still in flight: the next frame each client gets is this one.
        for client in clients.values():
            client.send(json.dumps({"action": "echo", "id": "flush", "data": {"text": "."}}))
            assert json.loads(client.recv(timeout=5))["id"] == "flush"
    return steps


@pytest.mark.parametrize("route_responses", [False, True], ids=["posted", "route-responses"])
def test_socket_and_lambda_paths_are_identical(
    mgmt_api: ManagementApi, route_responses: bool
) -> None:
    on_lambda = lambda_transcript(mgmt_api, route_responses)
    counts = [{name: len(frames) for name, frames in step.items()} for step in on_lambda]
    on_socket = socket_transcript(counts)
    assert on_socket == on_lambda
    # The script covers what it claims to: results, every error kind, and a push.
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
        ("error", "payload_too_large"),
    }
    assert on_lambda[11]["alice"] == [
        {"type": "event", "event": "poked", "data": {"by": "bob", "text": "hey"}}
    ]
    assert on_lambda[11]["bob"] == []
    assert on_lambda[2]["alice"][0]["data"] == {"text": "hi", "tier": 3}
