"""The event core: every connection event, from every path, is decided here.

The Lambda bridge, ``ws.mount`` and (through the Lambda handler) the local API Gateway are
adapters: they turn what they receive into a :class:`~mangum_ws.events.WebSocketEvent`, ask
the core, and carry out its answer (accept or refuse with a status, reply frames, a close
code). Connections are built here, API Gateway's limits applied here, crashes turned into
``internal_error`` here. No method of the core raises for anything a client or an event can
send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .connection import Connection
from .dispatch import dispatch
from .errors import ConnectionGone
from .events import InvalidEvent, WebSocketEvent, read_event
from .lifecycle import Refusal, admit, farewell
from .limits import inbound_closing
from .streams import RunningStreams, Send, StreamSupport

if TYPE_CHECKING:
    from .app import MangumWS

logger = logging.getLogger("mangum_ws")


class Accepted(NamedTuple):
    """The upgrade goes ahead, answering with this subprotocol (None: none)."""

    subprotocol: str | None


class HttpReply(NamedTuple):
    """What the Lambda function returns to API Gateway for one event."""

    status: int
    body: str = ""
    subprotocol: str | None = None


BAD_EVENT = HttpReply(400, "Bad Request")
OK = HttpReply(200)


class EventCore:
    def __init__(self, owner: MangumWS) -> None:
        self.owner = owner
        self.streams = RunningStreams()

    def connection(self, event: WebSocketEvent) -> Connection:
        return Connection(
            connection_id=event.connection_id,
            sender=self.owner,
            route_key=event.route_key,
            query=event.query,
            headers=event.headers,
            authorizer=event.authorizer,
            source_ip=event.source_ip,
            request_context=event.request_context,
        )

    async def connect(self, conn: Connection) -> Accepted | Refusal:
        refusal = await admit(self.owner.registry, conn, self.owner.store)
        if refusal is not None:
            return refusal
        # Browsers drop an upgrade whose answer names none of the subprotocols they offered.
        offered = conn.headers.get("sec-websocket-protocol", "").split(",")[0].strip()
        valid = offered.isascii() and offered.isprintable() and " " not in offered
        return Accepted(offered if offered and valid else None)

    async def message(
        self,
        conn: Connection,
        text: str,
        send: Send,
        detach: Callable[[], None] = lambda: None,
    ) -> str | None:
        """The reply frame for one text message (≤ 128 KB), or None when there is none.

        Frames that come before the reply (a stream's chunks) go through ``send``, in order;
        ``detach`` is called when the message turns out to start a stream.
        """
        support = StreamSupport(send, self.streams, self.owner.store, detach)
        return await dispatch(self.owner.registry, text, conn, support)

    async def disconnect(self, conn: Connection) -> None:
        await farewell(self.owner.registry, conn, self.owner.store)

    async def lambda_event(self, raw: Mapping[str, Any]) -> HttpReply:
        """One API Gateway event, as the Lambda function answers it."""
        try:
            event = read_event(raw)
        except InvalidEvent as exc:
            logger.warning("refused a malformed WebSocket event (400): %s", exc)
            return BAD_EVENT
        self.owner.gateway.learn_endpoint(event.request_context)
        conn = self.connection(event)
        if event.event_type == "CONNECT":
            verdict = await self.connect(conn)
            if isinstance(verdict, Refusal):
                return HttpReply(verdict.status_code, verdict.message)
            return HttpReply(200, subprotocol=verdict.subprotocol)
        if event.event_type == "DISCONNECT":
            await self.disconnect(conn)
            return OK
        text = event.body or ""
        closing = inbound_closing(text)
        if closing is not None:  # API Gateway closes the socket instead of invoking us
            logger.warning(
                "refused a MESSAGE event for connection %s (413): %s",
                conn.connection_id,
                closing.reason,
            )
            return HttpReply(413, closing.reason)
        gateway = self.owner.gateway

        async def post(frame: str) -> None:  # a route response cannot stream: chunks are posts
            await gateway.post(conn.connection_id, frame.encode())

        frame = await self.message(conn, text, post)
        if frame is None:
            return OK
        if self.owner.route_responses:
            return HttpReply(200, frame)
        return await self._post_reply(conn.connection_id, frame)

    async def _post_reply(self, connection_id: str, frame: str) -> HttpReply:
        try:
            await self.owner.gateway.post(connection_id, frame.encode())
        except ConnectionGone:
            logger.info("reply dropped: connection %s is gone", connection_id)
        except Exception as exc:
            # One line, no traceback: the reason is in the exception (throttled past the
            # retries, no credentials, endpoint unreachable), and it repeats per message.
            logger.error("reply to connection %s not posted: %r", connection_id, exc)
            return HttpReply(502, "Bad Gateway")
        return OK
