"""Fuzz the three paths with generated events and frames; every counter must be zero (issue 11).

    uv run python benchmarks/fuzz.py [--events 100000] [--frames 10000] [--seed 0] [--jobs N]

(lambda)            Mangum(app, custom_handlers=[ws.handler]) called with API Gateway events:
                    well-formed MESSAGE events carrying generated bodies, CONNECT / DISCONNECT,
                    and WebSocket-shaped garbage. Replies as route responses, and (a quarter of the
                    events, --posted-share) posted to a management API stand-in on 127.0.0.1.
                    Shards run in --jobs processes, one event at a time each, as Lambda does.
(mount)             ws.mount(app) on a real uvicorn, --clients websockets clients.
(local-api-gateway) LocalApiGateway in front of the Lambda handler, replies posted back.

Per path: events / frames sent, exceptions out of the handler, 500s, calls with an id left
without a reply, replies over 128 KB, server tracebacks other than the deliberately crashing
action's, the other contract counters when not zero, and wall time. Exit status 1 when any
counter is not zero. The generators, the app and the checks are in tests/support/fuzzing.py
(shared with tests/test_fuzz.py). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from tests.support.fuzzing import (
    Capture,
    Report,
    SocketPath,
    check_disconnects,
    check_socket_logs,
    drive_socket,
    random_frame,
    run_clients,
    run_lambda_shard,
    socket_paths,
)


def lambda_reports(events: int, seed: str, jobs: int, posted_share: float) -> list[Report]:
    posted = round(events * posted_share)
    plan = [(True, events - posted), (False, posted)]
    started = time.perf_counter()
    reports: list[Report] = []
    context = multiprocessing.get_context("spawn")  # no threads inherited half-way
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = []
        for route_responses, count in plan:
            shards = [count // jobs + (1 if i < count % jobs else 0) for i in range(jobs)]
            futures.append(
                [
                    pool.submit(
                        run_lambda_shard, f"{seed}-{route_responses}-{i}", n, route_responses
                    )
                    for i, n in enumerate(shards)
                    if n
                ]
            )
        for (route_responses, _), shard_futures in zip(plan, futures, strict=True):
            report = Report("lambda (route responses)" if route_responses else "lambda (posted)")
            for future in shard_futures:
                report.merge(future.result())
            reports.append(report)
    total = Report("lambda")
    for report in reports:
        total.merge(report)
    total.seconds = time.perf_counter() - started
    return [total, *reports]


def socket_report(
    path: SocketPath, frames: int, seed: str, clients: int, capture: Capture
) -> Report:
    report = Report(path.name)
    rng = random.Random(f"{seed}-{path.name}")
    capture.take()
    started = time.perf_counter()
    run_clients(
        drive_socket(path, (random_frame(rng) for _ in range(frames)), report, clients=clients)
    )
    check_disconnects(report, path.hooks)
    report.seconds = time.perf_counter() - started
    check_socket_logs(report, capture.take())
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="Lambda events")
    parser.add_argument("--frames", type=int, default=10_000, help="frames per socket path")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="Lambda processes")
    parser.add_argument("--posted-share", type=float, default=0.25, help="events replied by post")
    parser.add_argument("--clients", type=int, default=8, help="sockets at once per path")
    args = parser.parse_args()

    reports: list[Report] = []
    if args.events:
        reports += lambda_reports(args.events, args.seed, max(1, args.jobs), args.posted_share)
        for report in reports:
            print(report.summary(), flush=True)
    if args.frames:
        with Capture(ignore_thread=threading.get_ident()) as capture, socket_paths() as paths:
            for path in paths:
                report = socket_report(path, args.frames, args.seed, args.clients, capture)
                print(report.summary(), flush=True)
                reports.append(report)
    failed = [r.path for r in reports if r.violations]
    print("FAILED: " + ", ".join(failed) if failed else "all counters zero")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
