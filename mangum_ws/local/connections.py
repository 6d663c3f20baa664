"""The emulator's table of live sockets, and why each one closed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.websockets import WebSocket

from ..events import Peer
from ..gateways.sockets import LockedSocket
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
    socket: LockedSocket = field(init=False)

    def __post_init__(self) -> None:
        self.socket = LockedSocket(self.websocket)

    def touch(self) -> None:
        self.last_active_ms = time.time() * 1000
        self.last_active_monotonic = time.monotonic()

    async def send(self, text: str) -> bool:
        return await self.socket.send(text)

    async def close(self, code: int, reason: str) -> None:
        if self.closed_by_server is None:
            self.closed_by_server = Closing(code, reason)
        await self.socket.close(Closing(code, reason))

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
