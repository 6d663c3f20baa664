"""A client that leaves while one of its streams waits for its next chunk gets $disconnect at
once, as on AWS (where $disconnect is its own invocation): the stream must not hold it back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager

import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from websockets.sync.client import connect

from mangum_ws import Connection, MangumWS
from tests import test_streams as streams


class Tick(BaseModel):
    n: int


def build(ws: MangumWS, gone: list[float]) -> FastAPI:
    app = FastAPI()

    @ws.action("slow")
    async def slow() -> AsyncIterator[Tick]:
        yield Tick(n=0)
        await asyncio.sleep(4)  # a model thinking before its next token
        yield Tick(n=1)

    @ws.on_disconnect
    async def on_disconnect(conn: Connection) -> None:
        gone.append(time.monotonic())

    app.include_router(ws.router)
    return app


def mounted(gone: list[float]) -> AbstractContextManager[str]:
    return streams.mounted(gone, build)


def emulated(gone: list[float]) -> AbstractContextManager[str]:
    return streams.emulated(gone, build=build)


@pytest.mark.parametrize("server", [mounted, emulated], ids=["ws.mount", "local API Gateway"])
def test_disconnect_is_not_held_back_by_a_running_stream(
    server: Callable[[list[float]], contextlib.AbstractContextManager[str]],
) -> None:
    gone: list[float] = []
    with server(gone) as url:
        with connect(url) as client:
            client.send(json.dumps({"action": "slow", "id": "s"}))
            assert json.loads(client.recv(timeout=5))["type"] == "chunk"
        left = time.monotonic()
        deadline = left + 10
        while not gone and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gone, "no $disconnect"
        assert gone[0] - left < 2, f"$disconnect came {gone[0] - left:.1f} s after the client left"
