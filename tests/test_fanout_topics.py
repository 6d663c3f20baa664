"""Topics and publish on the Lambda path, with DynamoDB (moto server) and a local @connections."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

from mangum_ws import Connection, DynamoDBStore, InMemoryStore, MangumWS, SendReport
from tests.support.dynamodb import fresh_store
from tests.support.events import FakeLambdaContext, connect_event, disconnect_event, message_event
from tests.support.loops import run_on_mangums_loop
from tests.support.management_api import Answer, ManagementApi, live


class Room(BaseModel):
    room: str


class Said(BaseModel):
    text: str


def app_with_store(mgmt_url: str, moto_url: str) -> tuple[MangumWS, Mangum, DynamoDBStore]:
    store = fresh_store(moto_url)
    ws = MangumWS(endpoint_url=mgmt_url, store=store, route_responses=True)
    app = FastAPI()
    said = ws.event("said", Said)

    @ws.action("join")
    async def join(data: Room, conn: Connection) -> None:
        await ws.subscribe(conn.connection_id, data.room)

    @ws.action("whoami")
    async def whoami(conn: Connection) -> dict[str, Any]:
        record = await ws.connection(conn.connection_id)
        assert record is not None
        return {"query": dict(record.query), "authorizer": dict(record.authorizer)}

    @ws.action("say")
    async def say(data: Said) -> dict[str, Any]:
        report = await ws.publish("lobby", said.name, data)
        return {
            "delivered": sorted(report.delivered),
            "gone": sorted(report.gone),
            "failed": sorted(report.failed),
        }

    app.include_router(ws.router)
    return ws, Mangum(app, custom_handlers=[ws.handler]), store


def call(handler: Mangum, event: dict[str, Any]) -> Any:
    response = handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])["data"] if "body" in response else None


def test_store_follows_connect_and_disconnect_and_publish_reports(
    mgmt_api: ManagementApi, moto_url: str
) -> None:
    _ws, handler, store = app_with_store(mgmt_api.url, moto_url)
    ids = ["Alive000000000=", "Gone0000000000=", "Forbidden00000=", "Speaker0000000="]
    mgmt_api.responder = lambda cid, attempt: Answer(
        410 if cid.startswith("Gone") else 403 if cid.startswith("Forbidden") else 200
    )
    for cid in ids:
        handler(
            connect_event(cid, query={"nick": cid[:4]}, authorizer={"principalId": cid}),
            FakeLambdaContext(),
        )
        call(handler, message_event({"action": "join", "data": {"room": "lobby"}}, cid))

    # The connect-time context is there for later invocations (they carry no query string).
    me = call(handler, message_event({"action": "whoami", "id": "1"}, ids[0]))
    assert me == {"query": {"nick": "Aliv"}, "authorizer": {"principalId": ids[0]}}

    report = call(
        handler, message_event({"action": "say", "id": "2", "data": {"text": "hi"}}, ids[3])
    )
    assert report == {"delivered": sorted([ids[0], ids[3]]), "gone": [ids[1]], "failed": [ids[2]]}
    assert mgmt_api.received(ids[0]) == [
        {"type": "event", "event": "said", "topic": "lobby", "seq": 1, "data": {"text": "hi"}}
    ]
    subscribers = run_on_mangums_loop(store.subscribers("lobby"))
    assert subscribers == {ids[0], ids[2], ids[3]}  # gone removed on the spot; failed kept
    assert run_on_mangums_loop(store.get(ids[1])) is None

    handler(disconnect_event(ids[0]), FakeLambdaContext())
    assert run_on_mangums_loop(store.get(ids[0])) is None
    assert ids[0] not in run_on_mangums_loop(store.subscribers("lobby"))


class CountingStore(InMemoryStore):
    """The in-memory store, noting how many removals overlap; one id's removal fails."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing
        self.running = self.most_at_once = 0

    async def remove(self, connection_id: str) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0.01)  # a store round trip
            if connection_id == self.failing:
                raise RuntimeError("throttled")
            await super().remove(connection_id)
        finally:
            self.running -= 1


def test_publish_forgets_gone_subscribers_concurrently_and_a_failed_removal_loses_nothing(
    mgmt_api: ManagementApi, caplog: pytest.LogCaptureFixture
) -> None:
    gone = {f"gone-{i:02d}" for i in range(40)}
    store = CountingStore(failing="gone-07")
    ws = MangumWS(endpoint_url=mgmt_api.url, store=store, max_concurrency=8)
    said = ws.event("said", Said)
    mgmt_api.responder = live({"alive"})

    async def scenario() -> SendReport:
        for cid in gone | {"alive"}:
            await ws.subscribe(cid, "lobby")
        return await said.publish("lobby", Said(text="hi"))

    report = asyncio.run(scenario())
    assert report.delivered == {"alive"}
    assert report.gone == gone
    assert not report.failed
    assert asyncio.run(store.subscribers("lobby")) == {"alive", "gone-07"}
    assert 1 < store.most_at_once <= 8
    assert "could not remove connection gone-07 from the store" in caplog.text
