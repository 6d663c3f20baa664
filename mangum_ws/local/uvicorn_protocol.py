"""uvicorn's WebSocket protocol with two of API Gateway's rules that ASGI cannot express.

ASGI hands the application whole messages and a close code, so these live in the server's
protocol: a frame over 32 KB closes the connection with 1009, and a connection that ends
without a close frame is reported with 1006 (RFC 6455's "abnormal closure"; uvicorn says 1005,
"no status received", which a client's close frame without a code also gives). It subclasses
uvicorn's sans-I/O websockets implementation (uvicorn >= 0.35) at the methods that receive
data frames and lose the connection.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame

from ..limits import FRAME_TOO_BIG, MAX_FRAME_BYTES

__all__ = ["ApiGatewayWebSocketProtocol"]

ABNORMAL_CLOSURE = 1006
# After failing a connection (a frame or message too big), how long the server reads and
# discards what the client still sends before it closes the TCP connection.
DRAIN_SECONDS = 1.0


class ApiGatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    refused_frame = False
    draining = False

    def _refuse_big(self, frame: Frame) -> bool:
        if self.refused_frame:
            return True  # frames that arrived in the same read as the one refused
        if len(frame.data) <= MAX_FRAME_BYTES:
            return False
        self.refused_frame = True
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

    def handle_parser_exception(self) -> None:
        """uvicorn closes the TCP connection right after the close frame. A client still
        sending the rest of a big message then gets a TCP reset, which can destroy the close
        frame before it is read (the client sees 1006, not 1009). So: send the close frame,
        then read and discard (websockets' parser does, once failed) until the client closes
        its side or DRAIN_SECONDS pass."""
        if self.draining:
            return
        self.draining = True
        assert self.conn.close_sent is not None
        close = self.conn.close_sent
        self.queue.put_nowait(
            {"type": "websocket.disconnect", "code": close.code, "reason": close.reason}
        )
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.close_sent = True
        self.close_timer = self.loop.call_later(DRAIN_SECONDS, self.transport.close)

    def eof_received(self) -> None:
        if self.draining:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        ended_abruptly = (
            self.handshake_complete
            and not self.disconnected
            and not self.close_sent
            and self.conn.close_rcvd is None
        )
        if ended_abruptly:  # read first: the application stops at the first disconnect
            self.queue.put_nowait({"type": "websocket.disconnect", "code": ABNORMAL_CLOSURE})
        super().connection_lost(exc)
