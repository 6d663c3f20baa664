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
class _Socket:
    websocket: WebSocket
    # One writer at a time: replies and pushes from concurrent tasks must not interleave.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SocketGateway:
    """Delivers to the sockets connected through ``ws.mount``: the registry of open sockets."""

    def __init__(self) -> None:
        self._sockets: dict[str, _Socket] = {}
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
            # closed under our feet (Starlette turns the server's OSError into WebSocketDisconnect)
            except (OSError, RuntimeError, WebSocketDisconnect) as exc:
                self.unregister(connection_id)
                raise ConnectionGone(connection_id) from exc

    async def close(self, connection_id: str, closing: Closing) -> None:
        """Close with ``closing``'s code and reason; a no-op when the socket is gone."""
        socket = self._sockets.pop(connection_id, None)
        if socket is None:
            return
        async with socket.lock:
            if socket.websocket.application_state is WebSocketState.CONNECTED:
                with contextlib.suppress(OSError, RuntimeError):  # the peer went first
                    await socket.websocket.close(code=closing.code, reason=closing.reason)

    async def delete(self, connection_id: str) -> None:
        await self.close(connection_id, DELETED)
