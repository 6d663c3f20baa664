"""A client that leaves while $connect runs: the connection $connect admitted is still closed
with $disconnect (the emulator's promise; under ws.mount, the store must not keep it)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

from fastapi import FastAPI

from mangum_ws import Connection, MangumWS
from mangum_ws.local import LocalApiGateway
from tests.support.server import serve

UPGRADE = (
    "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def upgrade_then_leave(host: str, port: int, path: str) -> None:
    """Ask for an upgrade and close the TCP connection before the answer comes."""
    with socket.create_connection((host, port)) as sock:
        sock.sendall(UPGRADE.format(path=path).encode())
        time.sleep(0.1)


def wait_until(condition: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_emulator_invokes_disconnect_when_the_client_left_during_connect() -> None:
    events: list[str] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        kind = event["requestContext"]["eventType"]
        with lock:
            events.append(kind)
        if kind == "CONNECT":
            time.sleep(0.5)  # the client leaves meanwhile
        return {"statusCode": 200}

    with LocalApiGateway(handler) as gateway:
        upgrade_then_leave(gateway.host, gateway.port, "/local")
        wait_until(lambda: "CONNECT" in events)
        time.sleep(1)
        assert events == ["CONNECT", "DISCONNECT"]
        assert not gateway.connections


def test_mount_forgets_a_connection_whose_client_left_during_connect() -> None:
    app = FastAPI()
    ws = MangumWS()
    connected: list[str] = []
    disconnected: list[str] = []

    @ws.on_connect
    async def on_connect(conn: Connection) -> None:
        connected.append(conn.connection_id)
        await asyncio.sleep(0.5)  # the client leaves meanwhile

    @ws.on_disconnect
    async def on_disconnect(conn: Connection) -> None:
        disconnected.append(conn.connection_id)

    ws.mount(app, "/ws")
    with serve(app) as address:
        host, port = address.split(":")
        upgrade_then_leave(host, int(port), "/ws")
        wait_until(lambda: bool(connected))
        time.sleep(1)
        assert disconnected == connected
        assert asyncio.run(ws.connection(connected[0])) is None
