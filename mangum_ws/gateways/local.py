from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass, field

from starlette.websockets import WebSocket, WebSocketState

from ..errors import ConnectionGone


def new_connection_id() -> str:
    """An id shaped like API Gateway's (16 characters of base64, e.g. ``L0SM9cOFvHcCIhw=``)."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


@dataclass(slots=True)
class _Socket:
    websocket: WebSocket
    # One writer at a time: replies and pushes from concurrent tasks must not interleave.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LocalGateway:
    """In-memory gateway: delivers to the sockets connected through ``ws.mount``."""

    def __init__(self) -> None:
        self._sockets: dict[str, _Socket] = {}

    @property
    def is_local(self) -> bool:
        return True

    @property
    def connection_ids(self) -> frozenset[str]:
        return frozenset(self._sockets)

    def register(self, connection_id: str, websocket: WebSocket) -> None:
        self._sockets[connection_id] = _Socket(websocket)

    def unregister(self, connection_id: str) -> None:
        self._sockets.pop(connection_id, None)

    async def post(self, connection_id: str, data: bytes) -> None:
        await self.send_text(connection_id, data.decode())

    async def send_text(self, connection_id: str, text: str) -> None:
        """``post`` without the bytes round trip, for replies that are already text."""
        socket = self._sockets.get(connection_id)
        if socket is None:
            raise ConnectionGone(connection_id)
        async with socket.lock:
            if socket.websocket.application_state is not WebSocketState.CONNECTED:
                raise ConnectionGone(connection_id)
            try:
                await socket.websocket.send_text(text)
            except (OSError, RuntimeError) as exc:  # closed under our feet
                self.unregister(connection_id)
                raise ConnectionGone(connection_id) from exc

    async def delete(self, connection_id: str) -> None:
        socket = self._sockets.pop(connection_id, None)
        if socket is None:
            return
        async with socket.lock:
            if socket.websocket.application_state is WebSocketState.CONNECTED:
                await socket.websocket.close(code=1000)
