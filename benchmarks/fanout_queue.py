"""Fan-out through SQS: one publish to 100,000 subscribers, spread over N workers.

    uv run python benchmarks/fanout_queue.py [--ids 100000] [--delay-ms 10] [--workers 1,4,16]

Everything runs on 127.0.0.1, each part in its own process: moto's SQS server (a real queue),
a @connections endpoint answering each POST after ``--delay-ms`` (keep-alive, counting every
id it is sent), and N workers, each playing one Lambda execution environment: the local API
Gateway's SQS event source (mangum_ws.local.queue_poller) invoking ``ws.handler`` through
Mangum, as Lambda's poller would.
(s) the single-process publish: ``ws.publish`` without a queue, every post from one process
(q) ``MangumWS(fanout_queue=...)``: the publish queues sealed batches of 500 ids; the clock runs
    from the publish until the endpoint has seen every id
Every id must be posted (the script checks it) and, as no failure is injected, once: the
script prints how many posts went beyond one per id (a record delivered twice by the queue).
Each run has a queue of its own, so a record a run left behind can never be posted in the next;
moto's server is made to receive atomically (:func:`atomic_receives` says why), so a post beyond
one per id would be mangum-ws's own.
On a machine with few cores the workers share them: the speed-up is bounded by the cores, not
by the design (on Lambda each worker has its own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from subprocess_server import read_request, running

KEY = "benchmark-key-" + "k" * 32
VISIBILITY_TIMEOUT = 300
EVENT = {"type": "event", "event": "news", "data": {"text": "hello"}}


async def counting_endpoint(port: int, delay: float) -> None:
    """POST /@connections/{id}: 200 after ``delay``, counted; GET /stats: the counts."""
    seen: dict[str, int] = {}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                method, path = (await read_request(reader)).split(b" ", 2)[:2]
                body = b""
                if method == b"GET":
                    posts = sum(seen.values())
                    body = json.dumps({"posts": posts, "distinct": len(seen)}).encode()
                elif method == b"DELETE":
                    seen.clear()
                else:
                    if delay:
                        await asyncio.sleep(delay)
                    cid = path.rsplit(b"/", 1)[-1].decode()
                    seen[cid] = seen.get(cid, 0) + 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def atomic_receives() -> None:
    """Make moto's ReceiveMessage atomic, as SQS's is.

    moto's ``SQSBackend.receive_message`` checks ``message.visible`` and then marks the message
    received, with no lock between the two, and its server answers each request on a thread of
    its own: two workers receiving at the same moment can both get one message (seen here: 2 of
    400 messages, 16 threads). That is the stand-in's race, not the at-least-once delivery a
    standard queue allows (rare, and documented in docs/fanout.md), and it would hide whether
    mangum-ws itself posts an id twice. So each receive runs under one lock without waiting,
    and the long poll waits outside it.
    """
    import threading

    from moto.sqs.models import SQSBackend

    receive = SQSBackend.receive_message
    lock = threading.Lock()

    def receive_atomically(
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with lock:
                got = receive(
                    self, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            if got or time.monotonic() >= deadline:
                return got
            time.sleep(0.02)

    SQSBackend.receive_message = receive_atomically  # type: ignore[method-assign]


def serve_moto(port: int) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise

    atomic_receives()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    while True:
        time.sleep(3600)


def worker(queue_url: str, endpoint: str) -> None:
    """One execution environment: polls the queue, invokes the handler, until killed."""
    import threading

    from fastapi import FastAPI
    from mangum import Mangum

    from mangum_ws import InMemoryStore, MangumWS
    from mangum_ws.local.lambda_runtime import LambdaRuntime
    from mangum_ws.local.queue_poller import QueuePoller

    ws = MangumWS(endpoint_url=endpoint, fanout_queue=queue_url, store=InMemoryStore())
    app = FastAPI()
    app.include_router(ws.router)
    # The queue's visibility timeout (300 s) is six times this, as AWS advises: a loaded worker
    # still posting a batch never sees SQS hand it out again.
    runtime = LambdaRuntime(
        Mangum(app, lifespan="off", custom_handlers=[ws.handler]),
        timeout_seconds=VISIBILITY_TIMEOUT / 6,
    )
    assert ws.fanout is not None
    ws.fanout.client().get_queue_url(QueueName=queue_url.rsplit("/", 1)[-1])  # SQS client built
    print("ready", flush=True)
    asyncio.run(QueuePoller(ws.fanout, runtime.invoke).run(threading.Event()))


def stats(endpoint: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{endpoint}/stats", timeout=10) as answer:
        counts: dict[str, int] = json.loads(answer.read())
        return counts


def reset(endpoint: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/stats", method="DELETE"))


def subscribed(ws: object, ids: list[str]) -> None:
    async def subscribe_all() -> None:
        for cid in ids:
            await ws.subscribe(cid, "news")  # type: ignore[attr-defined]

    asyncio.run(subscribe_all())


def single_process(endpoint: str, ids: list[str]) -> float:
    from pydantic import BaseModel

    from mangum_ws import MangumWS

    class News(BaseModel):
        text: str

    ws = MangumWS(endpoint_url=endpoint)
    ws.event("news", News)
    subscribed(ws, ids)
    started = time.perf_counter()
    report = asyncio.run(ws.publish("news", "news", {"text": "hello"}))
    elapsed = time.perf_counter() - started
    assert len(report.delivered) == len(ids), report
    return elapsed


def through_queue(endpoint: str, queue_url: str, ids: list[str], workers: int) -> tuple[float, int]:
    """(seconds until every id was posted, posts beyond one per id)."""
    from pydantic import BaseModel

    from mangum_ws import MangumWS

    class News(BaseModel):
        text: str

    command = [sys.executable, __file__, "--worker", queue_url, "--endpoint", endpoint]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(workers)
    ]
    try:
        for process in processes:  # warm, as a warm Lambda pool: imported, polling
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready"
        ws = MangumWS(endpoint_url=endpoint, fanout_queue=queue_url)
        ws.event("news", News)
        subscribed(ws, ids)
        started = time.perf_counter()
        report = asyncio.run(ws.publish("news", "news", {"text": "hello"}))
        assert len(report.queued) == len(ids), report
        while stats(endpoint)["distinct"] < len(ids):
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        time.sleep(1)  # a late duplicate would show here
        counts = stats(endpoint)
        assert counts["distinct"] == len(ids), counts
        return elapsed, counts["posts"] - len(ids)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--delay-ms", type=float, default=10)
    parser.add_argument("--workers", default="1,4,16")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--serve-moto", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="benchmark",
        AWS_SECRET_ACCESS_KEY="benchmark",
        AWS_DEFAULT_REGION="us-east-1",
        MANGUM_WS_BACKGROUND_KEY=KEY,
    )
    if args.serve is not None:
        asyncio.run(counting_endpoint(args.port, args.serve))
        return
    if args.serve_moto:
        serve_moto(args.port)
        return
    if args.worker:
        worker(args.worker, args.endpoint)
        return
    sys.path.insert(0, str(Path(__file__).parent.parent))
    import boto3

    ids = [f"conn{i:07d}=" for i in range(args.ids)]
    load = os.getloadavg()[0]
    print(f"{args.ids} subscribers, {args.delay_ms:.0f} ms per post; load average {load:.1f}")
    with (
        running(__file__, "--serve", str(args.delay_ms / 1000)) as endpoint_port,
        running(__file__, "--serve-moto") as moto_port,
    ):
        endpoint = f"http://127.0.0.1:{endpoint_port}"
        sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{moto_port}")
        single = single_process(endpoint, ids)
        print(f"(s) single process: {single:6.1f} s  {args.ids / single:8.0f} posts/s")
        for workers in (int(n) for n in args.workers.split(",")):
            reset(endpoint)
            queue_url = sqs.create_queue(
                QueueName=f"fanout-{workers}",
                Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT)},
            )["QueueUrl"]
            queued, extra = through_queue(endpoint, queue_url, ids, workers)
            print(
                f"(q) {workers:>2} worker(s):   {queued:6.1f} s  {args.ids / queued:8.0f} posts/s"
                f"  s/q {single / queued:5.2f}x  every id posted; {extra} posted twice"
            )


if __name__ == "__main__":
    main()
