"""uvicorn's WebSocket protocol with API Gateway's frame rule: a frame over 32 KB closes 1009.

ASGI hands the application whole messages, so the frame rule has to live in the server's
protocol. This subclasses uvicorn's sans-I/O websockets implementation (uvicorn >= 0.35) at
the three methods that receive data frames.
"""

from __future__ import annotations

from typing import Final

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from ..limits import FRAME_TOO_BIG, MAX_FRAME_BYTES

__all__ = ["ApiGatewayFrames"]

_CLOSED: Final = "mangum_ws_frame_refused"


class ApiGatewayFrames(WebSocketsSansIOProtocol):
    def _refuse_big(self, frame: Frame) -> bool:
        if getattr(self, _CLOSED, False):
            return True  # frames that arrived in the same read as the one refused
        if len(frame.data) <= MAX_FRAME_BYTES:
            return False
        setattr(self, _CLOSED, True)
        self.frames = []
        # Fail the connection as websockets does for a message over max_size: a close frame
        # 1009, and a websocket.disconnect with that code for the application.
        self.conn.fail(FRAME_TOO_BIG.code, FRAME_TOO_BIG.reason)
        self.handle_parser_exception()
        return True

    def handle_text(self, event: Frame) -> None:
        if not self._refuse_big(event):
            super().handle_text(event)

    def handle_bytes(self, event: Frame) -> None:
        if not self._refuse_big(event):
            super().handle_bytes(event)

    def handle_cont(self, event: Frame) -> None:
        if not self._refuse_big(event):
            super().handle_cont(event)
