"""A benchmark's server in its own process on a free 127.0.0.1 port, so it never shares the
clients' interpreter (and GIL)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def running(script: str, *args: str) -> Iterator[int]:
    """Run ``python script *args --port PORT`` until the port accepts; yield the port."""
    with serving([sys.executable, script, *args, "--port"]) as port:
        yield port


@contextmanager
def serving(command: list[str], timeout: float = 20) -> Iterator[int]:
    """Run ``command PORT`` (a free port appended) until the port accepts; yield the port."""
    port = free_port()
    server = subprocess.Popen(
        [*command, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{' '.join(command)} did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # moto's server can sit out a SIGTERM
            server.kill()
            server.wait()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request off a keep-alive connection: its head (the body is read and
    dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return head
