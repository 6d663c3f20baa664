"""The event core: every connection event, from every path, is decided here.

The Lambda bridge, ``ws.mount`` and (through the Lambda handler) the local API Gateway are
adapters: they turn what they receive into a :class:`~mangum_ws.events.WebSocketEvent`, ask
the core, and carry out its answer (accept or refuse with a status, reply frames, a close
code). Connections are built here, API Gateway's limits applied here, crashes turned into
``internal_error`` here. No method of the core raises for anything a client or an event can
send.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .background import (
    KEY_VARIABLE,
    Detach,
    Forged,
    LambdaLauncher,
    NotLaunched,
    Run,
    function_arn_of,
    is_background,
    seal,
    signing_key,
    unseal,
)
from .connection import Connection
from .dispatch import dispatch
from .errors import ConnectionGone
from .events import InvalidEvent, WebSocketEvent, read_event
from .fanout_consumer import consume
from .lambda_authorizer import answer as authorizer_answer
from .lambda_authorizer import is_authorizer_event
from .lifecycle import Refusal, admit, farewell
from .limits import inbound_closing
from .protocol import encode, internal_error
from .registry import ActionSpec
from .sessions import hello
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


# No body: in route-response mode API Gateway would hand a body to the client as a message.
BAD_EVENT = HttpReply(400)
FORBIDDEN = HttpReply(403, "Forbidden")  # a background invocation: no client reads it
OK = HttpReply(200)


class EventCore:
    def __init__(self, owner: MangumWS) -> None:
        self.owner = owner
        self.streams = RunningStreams()
        self.launcher = LambdaLauncher()
        self._detached: set[asyncio.Task[None]] = set()  # in-process background actions

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
        release: Callable[[], None] = lambda: None,
    ) -> str | None:
        """The reply frame for one text message (≤ 128 KB), or None when there is none.

        Frames that come before the reply (a stream's chunks) go through ``send``, in order; so
        do all the frames of a background action, which runs in a task of its own. ``release``
        is called when the message turns out to start a stream.
        """
        return await self._dispatch(conn, text, send, self._in_task(send), release=release)

    async def _dispatch(
        self,
        conn: Connection,
        text: str,
        send: Send,
        detach: Detach | None,
        noted: bool = False,
        release: Callable[[], None] = lambda: None,
    ) -> str | None:
        support = StreamSupport(send, self.streams, self.owner.store, release, noted)
        greet = functools.partial(hello, self.owner, send)
        return await dispatch(self.owner.registry, text, conn, support, detach, greet)

    def _in_task(self, send: Send) -> Detach:
        async def detach(spec: ActionSpec, request_id: str | None, run: Run) -> None:
            async def run_to_the_end() -> None:
                frame = await run()
                if frame is None:
                    return
                try:
                    await send(frame)
                except ConnectionGone:
                    pass  # as on AWS: the action outlived its connection
                except Exception:
                    logger.exception("the reply of background action %r was not sent", spec.name)

            task = asyncio.create_task(run_to_the_end())
            self._detached.add(task)  # a strong reference until it ends
            task.add_done_callback(self._detached.discard)

        return detach

    async def disconnect(self, conn: Connection) -> None:
        await farewell(self.owner.registry, conn, self.owner.store, self.owner.session_ttl)

    async def lambda_event(self, raw: Mapping[str, Any], context: Any) -> HttpReply:
        """One API Gateway event (or one background invocation, or a batch of the fan-out
        queue), as the Lambda function answers it."""
        if is_background(raw):
            return await self._background_event(raw, context)
        if is_authorizer_event(raw):  # before read_event: it looks like a $connect event
            return HttpReply(*await authorizer_answer(self.owner.registry.authorizer, raw))
        fanout = self.owner.fanout
        if fanout is not None and fanout.claims(raw):  # records of the fan-out queue
            return HttpReply(200, encode(await consume(self.owner, fanout, raw)))
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
            return HttpReply(413)
        detach = self._in_invocation(event, context)
        frame = await self._dispatch(conn, text, self._poster(conn), detach)
        if frame is None:
            return OK
        if self.owner.route_responses:
            return HttpReply(200, frame)
        return await self._post_reply(conn.connection_id, frame)

    def _poster(self, conn: Connection) -> Send:
        gateway = self.owner.gateway

        async def post(frame: str) -> None:  # a route response cannot stream: chunks are posts
            await gateway.post(conn.connection_id, frame.encode())

        return post

    def _in_invocation(self, event: WebSocketEvent, context: Any) -> Detach:
        """On Lambda, a background action runs in an asynchronous invocation of this function."""
        store = self.owner.store

        async def detach(spec: ActionSpec, request_id: str | None, run: Run) -> str | None:
            # A stream is noted before the launch, so that a $cancel overtaking it finds it.
            noted = (event.connection_id, request_id) if spec.stream and request_id else None
            try:
                function_arn = function_arn_of(context)
                key = signing_key()
                if key is None:
                    raise NotLaunched(f"{KEY_VARIABLE} is not set (at least 32 characters)")
                if noted is not None:
                    await store.open_stream(*noted)
                await self.launcher.launch(function_arn, seal(event, function_arn, key))
            except Exception as exc:
                logger.error(
                    "background action %r for connection %s not started: %s",
                    spec.name,
                    event.connection_id,
                    exc,
                )
                if noted is not None:
                    with contextlib.suppress(Exception):  # it expires by TTL
                        await store.close_stream(*noted)
                return internal_error(request_id, spec.name)
            return None

        return detach

    async def _background_event(self, raw: Mapping[str, Any], context: Any) -> HttpReply:
        """An asynchronous invocation that a MESSAGE invocation started: the action runs here,
        and every frame it sends is posted (no caller waits for this invocation's answer)."""
        function_arn = getattr(context, "invoked_function_arn", None)
        try:
            event = read_event(unseal(raw, function_arn, signing_key()))
        except Forged as exc:
            logger.warning("refused a background invocation (403): %s", exc)
            return FORBIDDEN
        except InvalidEvent as exc:  # sealed here, so only by another version of the app
            logger.warning("refused a malformed background invocation (400): %s", exc)
            return BAD_EVENT
        self.owner.gateway.learn_endpoint(event.request_context)
        conn = self.connection(event)
        frame = await self._dispatch(conn, event.body or "", self._poster(conn), None, noted=True)
        if frame is None:
            return OK
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
