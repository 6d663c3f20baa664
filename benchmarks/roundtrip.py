"""Round trips per second and latency for N concurrent clients calling an echo action.

    uv run python benchmarks/roundtrip.py [--clients 1,50,200] [--messages 2000] [--repeats 3]
    uv run python benchmarks/roundtrip.py --quick

(a) ws.mount on uvicorn                (b) the local API Gateway, replies by post_to_connection
(c) the local API Gateway, route responses          (d) a raw FastAPI WebSocket echo: the ceiling
Each server runs in its own process on 127.0.0.1; the clients share this one. Every client sends
its share of the messages one after another, awaiting each reply. Figures are medians of the
repeats; ratios are to (d) at the same N. Target: (a) >= 0.7x (d).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from subprocess_server import running

from mangum_ws import MangumWS

KINDS = {
    "a": "ws.mount",
    "b": "emulator, posted",
    "c": "emulator, route responses",
    "d": "raw FastAPI echo",
}


class Echo(BaseModel):
    text: str


REQUEST = json.dumps({"action": "echo", "id": "1", "data": {"text": "hello"}})


def build_app(kind: str, management_url: str | None = None) -> Any:
    app = FastAPI()
    if kind == "d":

        @app.websocket("/")
        async def echo_raw(websocket: WebSocket) -> None:
            await websocket.accept()
            try:
                while True:
                    message = json.loads(await websocket.receive_text())
                    await websocket.send_text(
                        json.dumps(
                            {
                                "type": "result",
                                "id": message.get("id"),
                                "action": message["action"],
                                "data": message["data"],
                            }
                        )
                    )
            except WebSocketDisconnect:
                pass

        return app

    ws = MangumWS(endpoint_url=management_url, route_responses=kind == "c")

    @ws.action("echo")
    async def echo(data: Echo) -> Echo:
        return data

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
    gateway = LocalApiGateway(
        lambda e, c: handler["h"](e, c),
        port=port,
        route_keys=frozenset(),
        route_responses=kind == "c",
    )
    app, ws = build_app(kind, gateway.url)
    handler["h"] = Mangum(app, custom_handlers=[ws.handler], lifespan="off")
    gateway.serve_forever(log_level="error")


async def client(url: str, count: int, latencies: list[float]) -> None:
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        for _ in range(count):
            started = time.perf_counter()
            await ws.send(REQUEST)
            await ws.recv()
            latencies.append(time.perf_counter() - started)


async def load(url: str, clients: int, messages: int) -> tuple[float, float, float]:
    per_client = max(1, messages // clients)
    latencies: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(client(url, per_client, latencies) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return len(latencies) / elapsed, statistics.median(latencies) * 1000, p99 * 1000


def measure(
    kind: str, clients: list[int], messages: int, repeats: int
) -> dict[int, tuple[float, ...]]:
    with running(__file__, "--serve", kind) as port:
        url = f"ws://127.0.0.1:{port}/"
        asyncio.run(load(url, 1, 50))  # warm up
        results: dict[int, tuple[float, ...]] = {}
        for n in clients:
            runs = [asyncio.run(load(url, n, messages)) for _ in range(repeats)]
            results[n] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,50,200")
    parser.add_argument("--messages", type=int, default=2000, help="per run, over all clients")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 and 20 clients, 300 messages")
    parser.add_argument("--serve", choices=sorted(KINDS), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return
    clients = [1, 20] if args.quick else [int(n) for n in args.clients.split(",")]
    messages = 300 if args.quick else args.messages
    repeats = 1 if args.quick else args.repeats

    figures = {kind: measure(kind, clients, messages, repeats) for kind in ("d", "a", "b", "c")}
    print(f"{'path':<32}{'N':>5}{'msgs/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'x (d)':>8}")
    for kind in ("a", "b", "c", "d"):
        for n in clients:
            rate, p50, p99 = figures[kind][n]
            ratio = rate / figures["d"][n][0]
            print(
                f"({kind}) {KINDS[kind]:<28}{n:>5}{rate:>10.0f}{p50:>9.2f}{p99:>9.2f}{ratio:>8.2f}"
            )


if __name__ == "__main__":
    main()
