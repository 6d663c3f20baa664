"""The emulator's table of live sockets, and why each one closed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..events import Peer
from ..limits import Closing


def iso(epoch_ms: float) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


@dataclass
class LiveConnection:
    peer: Peer
    websocket: WebSocket
    last_active_ms: float = field(default_factory=lambda: time.time() * 1000)
    last_active_monotonic: float = field(default_factory=time.monotonic)
    # Set when the server side closes (DELETE, idle, max age): the DISCONNECT event reports it.
    closed_by_server: Closing | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def touch(self) -> None:
        self.last_active_ms = time.time() * 1000
        self.last_active_monotonic = time.monotonic()

    async def send(self, text: str) -> bool:
        async with self.lock:
            if self.websocket.application_state is not WebSocketState.CONNECTED:
                return False
            try:
                await self.websocket.send_text(text)
            except (OSError, RuntimeError, WebSocketDisconnect):  # the client left mid-send
                return False
            return True

    async def close(self, code: int, reason: str) -> None:
        if self.closed_by_server is None:
            self.closed_by_server = Closing(code, reason)
        async with self.lock:
            if self.websocket.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(OSError, RuntimeError):
                    await self.websocket.close(code=code, reason=reason)

    def description(self) -> dict[str, object]:
        """GET @connections/{id}, with the wire names of the Management API (boto3 maps
        them to ConnectedAt / Identity / LastActiveAt)."""
        return {
            "connectedAt": iso(self.peer.connected_at),
            "identity": {"sourceIp": self.peer.source_ip, "userAgent": self.peer.user_agent},
            "lastActiveAt": iso(self.last_active_ms),
        }


class ConnectionTable(dict[str, LiveConnection]):
    """connection id -> live connection; an id is present only between $connect and close."""
