"""A stream on Lambda keeps reading the store for its cancel after a read fails (throttled,
say): one failure must not leave it deaf to $cancel for the rest of its life."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

from mangum_ws import InMemoryStore, MangumWS
from tests.support.events import FakeLambdaContext, message_event
from tests.support.loops import invoke_in_thread
from tests.support.management_api import ManagementApi


class Tick(BaseModel):
    n: int


class FlakyStore(InMemoryStore):
    """Fails the first read of a stream's cancel flag, as DynamoDB does when it throttles."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def stream_cancelled(self, connection_id: str, stream_id: str) -> bool:
        if not self.failed:
            self.failed = True
            raise ConnectionError("throttled")
        return await super().stream_cancelled(connection_id, stream_id)


def test_one_failed_read_of_the_store_does_not_stop_a_stream_hearing_its_cancel(
    mgmt_api: ManagementApi,
) -> None:
    store = FlakyStore()  # shared by two instances, as DynamoDB is on Lambda

    def instance() -> Mangum:
        ws = MangumWS(endpoint_url=mgmt_api.url, store=store)
        app = FastAPI()

        @ws.action("slow")
        async def slow() -> AsyncIterator[Tick]:
            yield Tick(n=0)
            await asyncio.sleep(4)
            yield Tick(n=1)

        app.include_router(ws.router)
        return Mangum(app, custom_handlers=[ws.handler], lifespan="off")

    first, second = instance(), instance()
    cid = "L0SM9cOFvHcCIhw="
    streaming, _ = invoke_in_thread(
        first, message_event({"action": "slow", "id": "s"}, cid), FakeLambdaContext()
    )
    deadline = time.monotonic() + 5
    while not mgmt_api.received(cid) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.7)  # past the first read of the store, the one that fails
    answer = second(message_event({"action": "$cancel", "id": "s"}, cid), FakeLambdaContext())
    assert answer == {"statusCode": 200}
    streaming.join(timeout=10)
    frames = mgmt_api.received(cid)
    assert [f["type"] for f in frames] == ["chunk", "error"]  # type: ignore[index]
    assert frames[-1]["error"]["code"] == "cancelled"  # type: ignore[index]
