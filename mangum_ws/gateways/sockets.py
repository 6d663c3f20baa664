"""Sending to the sockets this process holds open, through ``ws.mount``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..errors import ConnectionGone
from ..limits import DELETED, Closing

logger = logging.getLogger("mangum_ws")


@dataclass(slots=True)
class LockedSocket:
    """A server-side WebSocket written by one task at a time: replies and pushes from
    concurrent tasks must not interleave. Shared by ``ws.mount``'s sockets and the local API
    Gateway's connections."""

    websocket: WebSocket
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, text: str) -> bool:
        """False when the socket is closed, or closes under the send."""
        async with self.lock:
            if self.websocket.application_state is not WebSocketState.CONNECTED:
                return False
            try:
                await self.websocket.send_text(text)
            # closed under our feet (Starlette turns the server's OSError into
            # WebSocketDisconnect)
            except (OSError, RuntimeError, WebSocketDisconnect):
                return False
            return True

    async def close(self, closing: Closing) -> None:
        """Close with ``closing``'s code and reason; a no-op when it is closed already."""
        async with self.lock:
            if self.websocket.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(OSError, RuntimeError):  # the peer went first
                    await self.websocket.close(code=closing.code, reason=closing.reason)


class SocketGateway:
    """Delivers to the sockets connected through ``ws.mount``: the registry of open sockets."""

    def __init__(self) -> None:
        self._sockets: dict[str, LockedSocket] = {}
        self._warned = False

    @property
    def sockets(self) -> SocketGateway:
        return self

    @property
    def connection_ids(self) -> frozenset[str]:
        return frozenset(self._sockets)

    def learn_endpoint(self, request_context: Mapping[str, Any]) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "an API Gateway WebSocket event arrived but MangumWS sends to local sockets, "
                "so every push will report the connection gone: pass endpoint_url= "
                "(e.g. from APIGW_MANAGEMENT_URL) or gateway=AwsGateway()"
            )

    def register(self, connection_id: str, websocket: WebSocket) -> None:
        self._sockets[connection_id] = LockedSocket(websocket)

    def unregister(self, connection_id: str) -> None:
        self._sockets.pop(connection_id, None)

    async def post(self, connection_id: str, data: bytes) -> None:
        await self.send_text(connection_id, data.decode())

    async def send_text(self, connection_id: str, text: str) -> None:
        """``post`` without the bytes round trip, for replies that are already text."""
        socket = self._sockets.get(connection_id)
        if socket is None or not await socket.send(text):
            self.unregister(connection_id)
            raise ConnectionGone(connection_id)

    async def close(self, connection_id: str, closing: Closing) -> None:
        """Close with ``closing``'s code and reason; a no-op when the socket is gone."""
        socket = self._sockets.pop(connection_id, None)
        if socket is not None:
            await socket.close(closing)

    async def delete(self, connection_id: str) -> None:
        await self.close(connection_id, DELETED)
