"""Fan-out: sends per second to 1,000 connection ids through a @connections endpoint.

    uv run python benchmarks/fanout.py [--ids 1000] [--delays 10,0] [--repeats 3] [--clients]
                                       [--tls]

The endpoint runs in its own process on 127.0.0.1: an asyncio HTTP/1.1 server that keeps
connections alive, disables Nagle, and answers each POST after a simulated network delay
(@connections is a network hop away from Lambda).
(a) the seed's way: one blocking boto3 post_to_connection after another
(b) mangum-ws: ``await ws.send(ids, data)`` (bounded concurrency, one signed session)
(c) the ceiling: the same number of raw concurrent HTTP POSTs from one process, over as many
    keep-alive connections as (b) uses (asyncio streams, no SDK)
Figures are medians of the repeats; "CPU us/post" is this process's CPU time (user + system)
over the posts ((b)'s includes its 32 warm-up posts). Targets at 10 ms: b/a >= 10,
b/c >= 0.9; at 0 ms: b/c >= 0.5.

``--clients`` first measures the HTTP clients mangum-ws could post with: its own pool
(gateways/http_pool.py), aiohttp, httpx and urllib3 in threads, and pyreqwest and curl_cffi when
they are installed (``uv pip install pyreqwest curl_cffi``), each with the same 32 keep-alive
connections and an unsigned request of the same size, on the same event loop (uvloop when
installed, as mangum-ws's I/O loop), so the choice of client is a measured one.

``--tls`` serves HTTPS instead (a trustme certificate for 127.0.0.1; the clients trust its CA,
boto3 and mangum-ws through AWS_CA_BUNDLE), as @connections is: every figure then includes TLS.
pyreqwest is left out over TLS (it reads no CA file given this way).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib.util
import os
import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from subprocess_server import read_request, running

from mangum_ws import MangumWS
from mangum_ws.gateways.io_loop import new_event_loop

PAYLOAD = b'{"type":"event","event":"chat.message","data":{"text":"hello"}}'
CONCURRENCY = 32


@dataclass(frozen=True)
class Target:
    """The endpoint as the clients reach it: over HTTPS when ``ca_file`` is set."""

    port: int
    ca_file: str | None = None

    @property
    def base(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://127.0.0.1:{self.port}"

    @functools.cached_property
    def tls(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None


def certificates(directory: str) -> tuple[str, str]:
    """(server certificate directory, CA file): a trustme CA and its certificate for 127.0.0.1."""
    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(f"{directory}/cert.pem")
    for pem in issued.cert_chain_pems[1:]:
        pem.write_to_path(f"{directory}/cert.pem", append=True)
    issued.private_key_pem.write_to_path(f"{directory}/key.pem")
    ca.cert_pem.write_to_path(f"{directory}/ca.pem")
    return directory, f"{directory}/ca.pem"


async def endpoint(port: int, delay: float, cert_dir: str | None) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                await read_request(reader)
                if delay:
                    await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    tls = None
    if cert_dir:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(f"{cert_dir}/cert.pem", f"{cert_dir}/key.pem")
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=2048, ssl=tls)
    async with server:
        await server.serve_forever()


def seed_way(url: str, ids: list[str]) -> float:
    import boto3

    client = boto3.client("apigatewaymanagementapi", endpoint_url=url, region_name="us-east-1")
    started = time.perf_counter()
    for cid in ids:
        client.post_to_connection(ConnectionId=cid, Data=PAYLOAD)
    return time.perf_counter() - started


def ours(url: str, ids: list[str]) -> float:
    ws = MangumWS(endpoint_url=url, max_concurrency=CONCURRENCY)
    asyncio.run(ws.send(ids[:CONCURRENCY], PAYLOAD.decode()))  # warm: client and pool built
    started = time.perf_counter()
    gone = asyncio.run(ws.send(ids, PAYLOAD.decode()))
    elapsed = time.perf_counter() - started
    assert not gone
    return elapsed


async def raw_posts(target: Target, ids: list[str]) -> float:
    pending = iter(ids)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port, ssl=target.tls)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for cid in pending:
            writer.write(
                f"POST /@connections/{cid} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {len(PAYLOAD)}\r\n\r\n".encode()
                + PAYLOAD
            )
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


def cpu_timed(run: Callable[[], float]) -> tuple[float, float]:
    """(wall seconds the run reports, CPU seconds this process spent on it)."""
    cpu = time.process_time()
    wall = run()
    return wall, time.process_time() - cpu


def median_of(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


# The HTTP clients, measured (--clients) -------------------------------------------------------
AUTH = {"Authorization": "x" * 200, "X-Amz-Date": "20260101T000000Z"}  # a signature's size


async def timed_posts(ids: list[str], post: Callable[[str], Awaitable[object]]) -> float:
    """Seconds for ``post(cid)`` of every id, CONCURRENCY workers sharing one iterator."""
    pending = iter(ids)

    async def worker() -> None:
        for cid in pending:
            await post(cid)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def with_pool(target: Target, ids: list[str]) -> float:
    from mangum_ws.gateways.http_pool import HttpPool, Origin

    pool = HttpPool(
        Origin.of(target.base),
        size=CONCURRENCY,
        tls=target.tls,
        connect_timeout=2,
        read_timeout=5,
    )
    lines = f"Host: 127.0.0.1:{target.port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in AUTH.items())

    async def post(cid: str) -> object:
        head = pool.head("POST", f"/@connections/{cid}", lines, len(PAYLOAD))
        return await pool.request(head, PAYLOAD)

    try:
        return await timed_posts(ids, post)
    finally:
        pool.close()


async def with_pyreqwest(target: Target, ids: list[str]) -> float:
    from pyreqwest.client import ClientBuilder  # type: ignore[import-not-found,unused-ignore]

    async with ClientBuilder().max_connections(CONCURRENCY).build() as client:

        async def post(cid: str) -> object:
            url = f"{target.base}/@connections/{cid}"
            request = client.post(url).headers(AUTH).body_bytes(PAYLOAD).build()
            return await (await request.send()).bytes()

        return await timed_posts(ids, post)


async def with_curl_cffi(target: Target, ids: list[str]) -> float:
    from curl_cffi.requests import AsyncSession  # type: ignore[import-not-found,unused-ignore]

    async with AsyncSession(max_clients=CONCURRENCY) as session:

        async def post(cid: str) -> object:
            url = f"{target.base}/@connections/{cid}"
            return await session.post(url, data=PAYLOAD, headers=AUTH, verify=target.ca_file)

        return await timed_posts(ids, post)


async def with_aiohttp(target: Target, ids: list[str]) -> float:
    import aiohttp
    from yarl import URL

    connector = aiohttp.TCPConnector(limit=CONCURRENCY, ssl=target.tls or True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(cid: str) -> object:
            url = URL(f"{target.base}/@connections/{cid}", encoded=False)
            async with session.post(url, data=PAYLOAD, headers=AUTH) as answer:
                return await answer.read()

        return await timed_posts(ids, post)


async def with_httpx(target: Target, ids: list[str]) -> float:
    import httpx

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, verify=target.tls or True) as client:

        async def post(cid: str) -> object:
            url = f"{target.base}/@connections/{cid}"
            return await client.post(url, content=PAYLOAD, headers=AUTH)

        return await timed_posts(ids, post)


def run_on_io_loop_kind(coroutine: Coroutine[Any, Any, float]) -> float:
    """Run on the kind of loop mangum-ws's I/O thread runs (uvloop when installed)."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(coroutine)


def with_urllib3(target: Target, ids: list[str]) -> float:
    import urllib3

    pool: urllib3.HTTPConnectionPool = (
        urllib3.HTTPSConnectionPool(
            "127.0.0.1", target.port, maxsize=CONCURRENCY, ca_certs=target.ca_file
        )
        if target.ca_file
        else urllib3.HTTPConnectionPool("127.0.0.1", target.port, maxsize=CONCURRENCY)
    )
    pending = iter(ids)
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                cid = next(pending, None)
            if cid is None:
                return
            pool.urlopen("POST", f"/@connections/{cid}", body=PAYLOAD, headers=AUTH)

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENCY)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


ASYNC_CLIENTS = {
    "mangum-ws": with_pool,
    "aiohttp": with_aiohttp,
    "httpx": with_httpx,
    "pyreqwest": with_pyreqwest,
    "curl_cffi": with_curl_cffi,
}
CLIENTS = ["mangum-ws", "aiohttp", "httpx", "urllib3", "pyreqwest", "curl_cffi"]


def post_with(name: str, target: Target, ids: list[str]) -> float:
    if name == "urllib3":
        return with_urllib3(target, ids)
    return run_on_io_loop_kind(ASYNC_CLIENTS[name](target, ids))


def compare_clients(
    delays: list[float], ids: list[str], repeats: int, serve: list[str], ca_file: str | None
) -> None:
    kind = "HTTPS" if ca_file else "HTTP"
    print(f"{kind} clients, {len(ids)} posts, {CONCURRENCY} at a time (medians of {repeats})")
    print(f"{'delay':>6}{'client':>10}{'posts/s':>10}{'CPU us/post':>13}")
    for delay_ms in delays:
        with running(__file__, "--serve", str(delay_ms / 1000), *serve) as port:
            target = Target(port, ca_file)
            for name in CLIENTS:
                if importlib.util.find_spec(name.replace("mangum-ws", "httptools")) is None:
                    print(f"{delay_ms:>4.0f}ms{name:>10}  not installed (uv pip install {name})")
                    continue
                if name == "pyreqwest" and ca_file:
                    print(f"{delay_ms:>4.0f}ms{name:>10}  not measured over TLS")
                    continue
                run = functools.partial(post_with, name, target, ids)
                wall, cpu = median_of([cpu_timed(run) for _ in range(repeats)])
                print(
                    f"{delay_ms:>4.0f}ms{name:>10}{len(ids) / wall:>10.0f}"
                    f"{cpu / len(ids) * 1e6:>13.0f}"
                )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=1000)
    parser.add_argument("--delays", default="10,0", help="simulated delays in ms")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clients", action="store_true", help="measure the HTTP clients first")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS, as @connections does")
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--cert-dir", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(endpoint(args.port, args.serve, args.cert_dir))
        return
    with tempfile.TemporaryDirectory() as directory:
        serve, ca_file = [], None
        if args.tls:
            cert_dir, ca_file = certificates(directory)
            serve = ["--cert-dir", cert_dir]
            os.environ["AWS_CA_BUNDLE"] = ca_file  # boto3's and mangum-ws's trust
        measure(args, serve, ca_file)


def measure(args: argparse.Namespace, serve: list[str], ca_file: str | None) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "benchmark")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "benchmark")
    ids = [f"conn{i:06d}=" for i in range(args.ids)]
    delays = [float(d) for d in args.delays.split(",")]
    print(f"load average {os.getloadavg()[0]:.1f}")
    if args.clients:
        compare_clients(delays, ids, args.repeats, serve, ca_file)
    print(f"{args.ids} sends; {CONCURRENCY} at a time for (b) and (c); CPU in us per post")
    print(
        f"{'delay':>6}{'(a) seed/s':>12}{'(b) ours/s':>12}{'(c) raw/s':>12}{'b/a':>8}{'b/c':>8}"
        f"{'a CPU':>8}{'b CPU':>8}{'c CPU':>8}"
    )
    for delay_ms in delays:
        with running(__file__, "--serve", str(delay_ms / 1000), *serve) as port:
            target = Target(port, ca_file)
            url = target.base
            seed_runs = 1 if delay_ms >= 5 else args.repeats  # ~11 s a run at 10 ms
            seed = functools.partial(seed_way, url, ids)
            mine = functools.partial(ours, url, ids)
            raw = functools.partial(lambda t: asyncio.run(raw_posts(t, ids)), target)
            a = median_of([cpu_timed(seed) for _ in range(seed_runs)])
            b = median_of([cpu_timed(mine) for _ in range(args.repeats)])
            c = median_of([cpu_timed(raw) for _ in range(args.repeats)])
        rate = {k: args.ids / v[0] for k, v in (("a", a), ("b", b), ("c", c))}
        cpu = {k: v[1] / args.ids * 1e6 for k, v in (("a", a), ("b", b), ("c", c))}
        print(
            f"{delay_ms:>4.0f}ms{rate['a']:>12.0f}{rate['b']:>12.0f}{rate['c']:>12.0f}"
            f"{rate['b'] / rate['a']:>8.1f}{rate['b'] / rate['c']:>8.2f}"
            f"{cpu['a']:>8.0f}{cpu['b']:>8.0f}{cpu['c']:>8.0f}"
        )


if __name__ == "__main__":
    main()
