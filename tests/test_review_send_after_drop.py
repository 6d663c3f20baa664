"""ws.mount: a send to a client whose TCP connection is gone (while the endpoint is not reading,
its 16 message slots taken) is ConnectionGone, like every other send to a closed socket.

Starlette turns the server's OSError into WebSocketDisconnect, which SocketGateway let through:
a stream then logged a crash with its traceback for a client that had merely left."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from websockets.sync.client import connect

from mangum_ws import MangumWS
from mangum_ws.socket_endpoint import MAX_IN_FLIGHT
from tests.support.server import serve


class Tick(BaseModel):
    n: int


def test_a_stream_whose_client_dropped_ends_quietly(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI()
    ws = MangumWS()
    ended: list[str] = []

    @ws.action("ticks")
    async def ticks() -> AsyncIterator[Tick]:
        try:
            for n in range(40):
                yield Tick(n=n)
                await asyncio.sleep(0.05)
        finally:
            ended.append("ticks")

    @ws.action("slow")
    async def slow() -> None:
        await asyncio.sleep(2)

    ws.mount(app)
    with serve(app) as address, connect(f"ws://{address}/") as client:
        client.send(json.dumps({"action": "ticks", "id": "s"}))
        assert json.loads(client.recv(timeout=5))["type"] == "chunk"
        for n in range(MAX_IN_FLIGHT + 1):  # the last one leaves the endpoint waiting for a slot
            client.send(json.dumps({"action": "slow", "id": f"w{n}"}))
        time.sleep(0.2)
        client.socket.shutdown(socket.SHUT_RDWR)  # gone, no close frame
        deadline = time.monotonic() + 5
        while not ended and time.monotonic() < deadline:
            time.sleep(0.02)
    assert ended == ["ticks"]
    failures = [r for r in caplog.records if r.name == "mangum_ws" and r.levelno >= logging.ERROR]
    assert failures == []
