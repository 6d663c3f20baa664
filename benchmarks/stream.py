"""Chunks per second of one streaming action, against raw sends on the same kind of socket.

    uv run python benchmarks/stream.py [--chunks 1000] [--repeats 7] [--streams 1]

(a) ws.mount on uvicorn: an async-generator action yielding ~100-byte Pydantic chunks
(b) the local API Gateway in front of the Lambda handler: each chunk a POST to @connections
(d) a raw FastAPI WebSocket that sends the same chunk frames (json.dumps, send_text): the ceiling
Each server runs in its own process on 127.0.0.1. A run sends the call(s) and reads every
frame up to the end of each stream. Figures are medians of the repeats; ratios are to (d).
Target: (a) >= 0.7x (d).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from subprocess_server import running

from mangum_ws import MangumWS

KINDS = {"a": "ws.mount", "b": "emulator, posted", "d": "raw FastAPI sends"}
TEXT = "token " * 12  # with the envelope, a chunk frame of ~150 bytes, ~100 of them data


class Ask(BaseModel):
    chunks: int


class Token(BaseModel):
    n: int
    text: str


def build_app(kind: str, management_url: str | None = None) -> Any:
    app = FastAPI()
    if kind == "d":

        @app.websocket("/")
        async def raw(websocket: WebSocket) -> None:
            await websocket.accept()
            try:
                while True:
                    message = json.loads(await websocket.receive_text())
                    sid, action = message["id"], message["action"]
                    for n in range(message["data"]["chunks"]):
                        frame = {"type": "chunk", "id": sid, "action": action, "seq": n}
                        frame["data"] = {"n": n, "text": TEXT}
                        await websocket.send_text(json.dumps(frame))
                    end = {"type": "result", "id": sid, "action": action, "data": None}
                    await websocket.send_text(json.dumps(end))
            except WebSocketDisconnect:
                pass

        return app

    ws = MangumWS(endpoint_url=management_url)

    @ws.action("tokens")
    async def tokens(data: Ask) -> AsyncIterator[Token]:
        for n in range(data.chunks):
            yield Token(n=n, text=TEXT)

    app.include_router(ws.router)
    ws.mount(app)
    return app if kind == "a" else (app, ws)


def serve(kind: str, port: int) -> None:
    """The server process."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
    if kind in ("a", "d"):
        import uvicorn

        uvicorn.run(build_app(kind), host="127.0.0.1", port=port, log_level="error")
        return
    from mangum import Mangum

    from mangum_ws.local import LocalApiGateway

    handler: dict[str, Any] = {}
    gateway = LocalApiGateway(lambda e, c: handler["h"](e, c), port=port, route_keys=frozenset())
    app, ws = build_app(kind, gateway.url)
    handler["h"] = Mangum(app, custom_handlers=[ws.handler], lifespan="off")
    gateway.serve_forever(log_level="error")


async def one_run(url: str, chunks: int, streams: int) -> float:
    """Chunks per second for ``streams`` concurrent streams of ``chunks`` each."""
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        started = time.perf_counter()
        for s in range(streams):
            call = {"action": "tokens", "id": f"s{s}", "data": {"chunks": chunks}}
            await ws.send(json.dumps(call))
        ended, received = 0, 0
        while ended < streams:
            frame = json.loads(await ws.recv())
            if frame["type"] == "chunk":
                received += 1
            else:
                assert frame["type"] == "result", frame
                ended += 1
        elapsed = time.perf_counter() - started
    assert received == chunks * streams
    return received / elapsed


def measure(kind: str, chunks: int, streams: int, repeats: int) -> float:
    with running(__file__, "--serve", kind) as port:
        url = f"ws://127.0.0.1:{port}/"
        asyncio.run(one_run(url, 50, 1))  # warm up
        return statistics.median(asyncio.run(one_run(url, chunks, streams)) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=1000, help="per stream")
    parser.add_argument("--streams", type=int, default=1, help="at once, on one connection")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--serve", choices=sorted(KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    rates = {kind: measure(kind, args.chunks, args.streams, args.repeats) for kind in KINDS}
    print(f"{args.streams} stream(s) of {args.chunks} chunks, median of {args.repeats} runs")
    print(f"{'path':<28}{'chunks/s':>10}{'x (d)':>8}")
    for kind, name in KINDS.items():
        print(f"({kind}) {name:<24}{rates[kind]:>10.0f}{rates[kind] / rates['d']:>8.2f}")


if __name__ == "__main__":
    main()
