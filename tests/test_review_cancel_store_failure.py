"""A store that fails while a $cancel is written: the caller still gets an answer (internal_error
with its id), as for any other failure; nothing escapes the core."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel
from websockets.sync.client import connect

from mangum_ws import AwsGateway, InMemoryStore, MangumWS
from tests.support.events import FakeLambdaContext, message_event
from tests.support.server import serve


class Tick(BaseModel):
    n: int


class BrokenStore(InMemoryStore):
    async def cancel_stream(self, connection_id: str, stream_id: str) -> bool:
        raise ConnectionError("the store is unreachable")


def build(ws: MangumWS) -> FastAPI:
    app = FastAPI()

    @ws.action("count")
    async def count() -> AsyncIterator[Tick]:
        yield Tick(n=0)

    app.include_router(ws.router)
    return app


CANCEL = {"action": "$cancel", "id": "s1"}


def test_cancel_with_a_failing_store_is_answered_through_mount() -> None:
    ws = MangumWS(store=BrokenStore())
    app = build(ws)
    ws.mount(app, "/ws")
    with serve(app) as address, connect(f"ws://{address}/ws") as client:
        client.send(json.dumps(CANCEL))
        reply = json.loads(client.recv(timeout=3))
    assert reply["type"] == "error"
    assert (reply["id"], reply["error"]["code"]) == ("s1", "internal_error")


def test_cancel_with_a_failing_store_is_answered_on_lambda() -> None:
    ws = MangumWS(
        gateway=AwsGateway("https://example.invalid/prod"),
        store=BrokenStore(),
        route_responses=True,
    )
    handler = Mangum(build(ws), custom_handlers=[ws.handler], lifespan="off")
    result = handler(message_event(CANCEL), FakeLambdaContext())
    assert result["statusCode"] == 200
    reply = json.loads(result["body"])
    assert (reply["id"], reply["error"]["code"]) == ("s1", "internal_error")
