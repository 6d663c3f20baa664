"""Publish throughput with retention on (seq numbers, recent events kept for replays) against
off (``topic_history=0``), measured in the same run.

    uv run python benchmarks/publish_retention.py [--subscribers 100] [--publishes 200]
        [--repeats 5] [--delay-ms 0] [--dynamodb]

Each publish goes to every subscriber through a @connections endpoint in its own process on
127.0.0.1 (fanout.py's, answering after ``--delay-ms``: @connections is a network hop away).
The store is in memory, and with ``--dynamodb`` also DynamoDB on moto's server (its own
process): there retention costs an atomic counter update and a batch write per publish. On
and off alternate, each repeat on fresh topics; figures are medians. Target: on/off >= 0.8.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import fanout
from subprocess_server import running, serving

from mangum_ws import ConnectionStore, DynamoDBStore, InMemoryStore, MangumWS


async def publishes_per_second(
    url: str, store: ConnectionStore, history: int, subscribers: int, publishes: int
) -> float:
    ws = MangumWS(endpoint_url=url, store=store, topic_history=history)
    ws.event("tick", dict)
    topic = f"t-{uuid.uuid4().hex[:8]}"
    for i in range(subscribers):
        await store.subscribe(f"conn{i:06d}=", topic)
    await ws.publish(topic, "tick", {"n": 0})  # warm: clients and pools built
    started = time.perf_counter()
    for n in range(publishes):
        report = await ws.publish(topic, "tick", {"n": n})
        assert len(report.delivered) == subscribers, report
    return publishes / (time.perf_counter() - started)


def compare(name: str, url: str, store: ConnectionStore, args: argparse.Namespace) -> None:
    on: list[float] = []
    off: list[float] = []
    for _ in range(args.repeats):
        for history, rates in ((1000, on), (0, off)):
            rates.append(
                asyncio.run(
                    publishes_per_second(url, store, history, args.subscribers, args.publishes)
                )
            )
    a, b = statistics.median(on), statistics.median(off)
    print(f"{name:<10}{a:>14.1f}{b:>14.1f}{a / b:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--publishes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=0.0, help="@connections answer delay")
    parser.add_argument("--dynamodb", action="store_true", help="also DynamoDB on moto's server")
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "benchmark")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    print(
        f"{args.publishes} publishes to {args.subscribers} subscribers; medians of {args.repeats}"
    )
    print(f"{'store':<10}{'on (pub/s)':>14}{'off (pub/s)':>14}{'on/off':>10}")
    with running(str(Path(fanout.__file__)), "--serve", str(args.delay_ms / 1000)) as port:
        url = f"http://127.0.0.1:{port}"
        compare("memory", url, InMemoryStore(), args)
        if args.dynamodb:
            with serving(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p"], 30
            ) as moto:
                moto_url = f"http://127.0.0.1:{moto}"
                store = DynamoDBStore(f"bench-{uuid.uuid4().hex[:8]}", endpoint_url=moto_url)
                store.create_table()
                compare("dynamodb", url, store, args)


if __name__ == "__main__":
    main()
