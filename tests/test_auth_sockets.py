"""@ws.authorizer where mangum-ws plays API Gateway: ws.mount's socket and the local API
Gateway (which builds the authorizer event and reads the function's policy, as AWS does).
Real uvicorn on 127.0.0.1, real WebSocket clients."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from mangum_ws import Connection, ConnectRequest, MangumWS, Principal, Reject
from tests import test_streams as streams
from tests.support.messages import call


class Me(BaseModel):
    principal: str | None
    authorizer: dict[str, Any]


class Seen:
    def __init__(self) -> None:
        self.connects: list[str | None] = []
        self.disconnects: list[str | None] = []


def chat(ws: MangumWS, seen: Seen) -> FastAPI:
    app = FastAPI()

    @ws.authorizer(identity=["query:token"])
    async def sign_in(request: ConnectRequest) -> Principal:
        token = request.query["token"]
        if token == "banned":
            raise Reject(403)
        if token == "expired":
            raise Reject(401)
        if token == "crash":
            raise RuntimeError("the identity provider is down")
        if token == "nested":
            return Principal("u", {"roles": ["admin"]})  # type: ignore[dict-item]
        if token == "huge":
            return Principal("u", {"blob": "x" * 9000})
        return Principal(f"user-{token}", {"role": "admin" if token == "1" else "member"})

    @ws.on_connect
    def on_connect(conn: Connection) -> None:
        seen.connects.append(conn.principal)

    @ws.on_disconnect
    def on_disconnect(conn: Connection) -> None:
        seen.disconnects.append(conn.principal)

    @ws.action("me")
    async def me(conn: Connection) -> Me:
        return Me(principal=conn.principal, authorizer=dict(conn.authorizer))

    app.include_router(ws.router)
    return app


def mounted(seen: Seen) -> AbstractContextManager[str]:
    return streams.mounted([], lambda ws, _: chat(ws, seen))


def emulated(seen: Seen) -> AbstractContextManager[str]:
    return streams.emulated([], build=lambda ws, _: chat(ws, seen))


PATHS: dict[str, Callable[[Seen], AbstractContextManager[str]]] = {
    "ws.mount": mounted,
    "local API Gateway": emulated,
}


@pytest.fixture(params=list(PATHS))
def path(request: pytest.FixtureRequest) -> Callable[[Seen], AbstractContextManager[str]]:
    return PATHS[request.param]


def test_the_context_rides_on_every_later_event(
    path: Callable[[Seen], AbstractContextManager[str]],
) -> None:
    seen = Seen()
    with path(seen) as url:
        with connect(f"{url}?token=1") as client:
            answers = []
            for n in range(2):
                client.send(call("me", str(n)))
                answers.append(json.loads(client.recv(timeout=10))["data"])
        for answer in answers:
            latency = answer["authorizer"].pop("integrationLatency")
            assert isinstance(latency, int)
            assert latency >= 0
            assert answer == {
                "principal": "user-1",
                "authorizer": {"principalId": "user-1", "role": "admin"},
            }
    assert seen.connects == ["user-1"]
    assert seen.disconnects == ["user-1"]


@pytest.mark.parametrize(
    ("query", "status", "logged"),
    [
        ("?token=banned", 403, None),
        ("?token=expired", 401, None),
        ("", 401, None),
        ("?token=", 401, None),
        ("?token=crash", 500, "the identity provider is down"),
        ("?token=nested", 500, "context['roles'] is a list"),
        ("?token=huge", 500, "over API Gateway's 8192"),
    ],
    ids=["denied", "unauthorized", "missing", "empty", "crash", "invalid", "oversize"],
)
def test_refusals_answer_the_upgrade_as_api_gateway_does(
    path: Callable[[Seen], AbstractContextManager[str]],
    caplog: pytest.LogCaptureFixture,
    query: str,
    status: int,
    logged: str | None,
) -> None:
    seen = Seen()
    with caplog.at_level(logging.ERROR), path(seen) as url:
        with pytest.raises(InvalidStatus) as info:
            connect(f"{url}{query}").close()
        assert info.value.response.status_code == status
        with connect(f"{url}?token=2") as client:  # the next caller is still served
            client.send(call("me", "1"))
            assert json.loads(client.recv(timeout=10))["data"]["principal"] == "user-2"
    assert seen.connects == ["user-2"]  # $connect never ran for the refused one
    if logged is not None:
        assert logged in caplog.text
