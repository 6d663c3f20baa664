"""The Python client runtime (wire protocol v1). The generator copies this module's source,
from its "runtime" marker line on, into every client.py, after the app's models: a generated client
needs only ``websockets`` and ``pydantic``, never mangum-ws itself.

Its behaviour matches the TypeScript client's (codegen/runtime.ts): calls queued while
(re)connecting, per-call timeouts, reconnect with full-jitter exponential backoff, a keep-alive
under API Gateway's 10-minute idle timeout, messages over API Gateway's 32 KB frame limit
refused before they are sent, and sessions: ``$hello`` first on every (re)connect, with the
session token and the last seq of each topic, so that the server moves the subscriptions and
replays what was missed; each topic event reaches the app once, in seq order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.typing import Subprotocol

__all__ = [
    "MAX_FRAME_BYTES",
    "ActionCallError",
    "ConnectionState",
    "EventStream",
    "MangumWSClient",
    "SessionInfo",
]

# --- runtime ---

#: API Gateway closes a connection on any frame over 32 KB, and a client sends each message
#: as one frame: a bigger call is refused, with ``payload_too_large``, before it goes out.
MAX_FRAME_BYTES = 32 * 1024

logger = logging.getLogger(__name__)

#: A ``$hello`` the server failed (``internal_error``: its store, half-way) is sent again this
#: many times: moving a session again is harmless.
HELLO_RETRIES = 3

ConnectionState = Literal["connecting", "open", "reconnecting", "closed"]
EventCallback = Callable[[Any], Awaitable[None] | None]
_T = TypeVar("_T")


@dataclass(frozen=True)
class SessionInfo:
    """The answer to the last ``$hello``."""

    #: The session token: kept by the client and sent again after every reconnect.
    token: str
    #: True when the server took back an earlier session (its subscriptions and state).
    resumed: bool
    #: How many missed topic events the server sent again.
    replayed: int
    #: Topics whose missed events are past what the server keeps: refetch their state.
    lost: tuple[str, ...]
    #: False: this client was generated from another schema than the server's; None: unknown.
    schema_ok: bool | None


def _warn_schema_mismatch(info: SessionInfo) -> None:
    logger.warning(
        "mangum-ws: this client was generated from another schema than the server's; regenerate it"
    )


class ActionCallError(Exception):
    """A typed error: the server's error frame, or a client-side failure.

    Client-side codes: ``timeout``, ``connection_lost`` (the socket closed while the call was in
    flight: it may or may not have run, so it is never resent), ``queue_full``, ``closed``,
    ``payload_too_large``, and for streams ``buffer_full`` and ``protocol_error``.
    """

    def __init__(
        self, code: str, message: str, details: Any = None, action: str | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        self.action = action


class _Pending:
    """One request waiting for its answer: a result, an error, or (streams) chunks."""

    def __init__(self, action: str, frame: str, stream: bool, max_buffered: int) -> None:
        self.action = action
        self.frame = frame
        self.stream = stream
        self.frames: asyncio.Queue[dict[str, Any] | ActionCallError] = asyncio.Queue()
        self.max_buffered = max_buffered
        self.sent = False

    def deliver(self, item: dict[str, Any] | ActionCallError) -> None:
        self.frames.put_nowait(item)


class EventStream(Generic[_T]):
    """An event's pushes as an async iterator, subscribed from its creation."""

    def __init__(self, client: MangumWSClient, event: str, parse: Callable[[Any], _T]) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._parse = parse
        self._stop = client.on(event, self._queue.put_nowait)

    def __aiter__(self) -> EventStream[_T]:
        return self

    async def __anext__(self) -> _T:
        return self._parse(await self._queue.get())

    async def aclose(self) -> None:
        self._stop()

    async def __aenter__(self) -> EventStream[_T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class MangumWSClient:
    """A mangum-ws client on ``websockets``: ``async with Client(url) as client: ...``."""

    #: The schema hash ``$hello`` sends when no ``schema_hash`` is given: the generated
    #: ``Client`` sets its registry's.
    generated_schema_hash: str | None = None

    def __init__(
        self,
        url: str,
        *,
        query: dict[str, str] | None = None,
        subprotocols: list[str] | None = None,
        timeout: float = 10.0,
        reconnect: bool = True,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        max_attempts: int | None = None,
        max_queue: int = 100,
        keepalive: float = 300.0,
        max_buffered: int = 10_000,
        sessions: bool = True,
        schema_hash: str | None = None,
        on_session: Callable[[SessionInfo], None] | None = None,
        on_schema_mismatch: Callable[[SessionInfo], None] = _warn_schema_mismatch,
        gap_timeout: float = 5.0,
    ) -> None:
        """``sessions``: resume the session with ``$hello`` on every (re)connect.
        ``schema_hash``: the registry's (default: the generated ``Client``'s ``SCHEMA_HASH``).
        ``on_session``: called after every ``$hello`` answer; ``on_schema_mismatch``: once when
        the server's schema differs (default: one log warning). ``gap_timeout``: how long, in
        seconds of an open connection, a topic event that came ahead of a missing seq waits."""
        self.url = _with_query(url, query or {})
        self.subprotocols = [Subprotocol(p) for p in subprotocols or []]
        self.timeout = timeout
        self.reconnect = reconnect
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_attempts = max_attempts
        self.max_queue = max_queue
        self.keepalive = keepalive
        self.max_buffered = max_buffered
        self._state: ConnectionState = "connecting"
        self._socket: ClientConnection | None = None
        self._pending: dict[str, _Pending] = {}
        self._queue: list[_Pending] = []
        self._listeners: dict[str, set[EventCallback]] = {}
        self._state_listeners: set[Callable[[ConnectionState], None]] = set()
        self._next_id = 1
        self._runner: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._opened = asyncio.Event()
        self._closing = False
        self._sends: set[asyncio.Future[None]] = set()
        self.sessions = sessions
        self.schema_hash = schema_hash if schema_hash is not None else self.generated_schema_hash
        self.on_session = on_session
        self.on_schema_mismatch = on_schema_mismatch
        self.gap_timeout = gap_timeout
        self._session: SessionInfo | None = None
        #: The ``$hello`` whose answer is still wanted: after its timeout too, for the token.
        self._hello_id: str | None = None
        #: Per topic: the last seq handed to the app, and events that came ahead of a missing one.
        self._last_seq: dict[str, int] = {}
        self._held: dict[str, dict[int, dict[str, Any]]] = {}
        self._gap_timers: dict[str, asyncio.Task[None]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def connection_state(self) -> ConnectionState:
        return self._state

    @property
    def session(self) -> SessionInfo | None:
        """The session of the last ``$hello`` (None before the first answer, or sessions off)."""
        return self._session

    async def connect(self) -> None:
        """Start connecting (and reconnecting) in the background; wait for the first open."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name=f"mangum-ws {self.url}")
        # Two steps, each within ``timeout``: the socket, then the $hello's answer.
        for step in (self._connected, self._opened):
            reached = asyncio.create_task(step.wait())
            done, _ = await asyncio.wait(
                {reached, self._runner}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if reached not in done:
                reached.cancel()
                await self.close()
                if not done:
                    raise ActionCallError("timeout", f"could not connect within {self.timeout} s")
                raise ActionCallError("closed", "the client could not connect")

    async def close(self) -> None:
        """Close the socket, stop reconnecting, and fail what is waiting with ``closed``."""
        self._closing = True
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for timer in self._gap_timers.values():
            timer.cancel()
        self._gap_timers.clear()
        self._fail_all("closed", "the client is closed", queued=True)
        self._set_state("closed")

    async def __aenter__(self) -> MangumWSClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def on_state_change(self, callback: Callable[[ConnectionState], None]) -> Callable[[], None]:
        self._state_listeners.add(callback)
        return lambda: self._state_listeners.discard(callback)

    async def on_open(self, socket: ClientConnection) -> None:
        """Runs after every (re)connect, before queued calls go out: the place for a handshake
        of a subclass's own. The session's ``$hello`` has been answered by then (or timed out);
        the base client has nothing more to say."""

    # -- calls ---------------------------------------------------------------------------------

    async def request(self, action: str, data: Any = None, *, timeout: float | None = None) -> Any:
        """Call an action with JSON-able ``data``; return the result's data (as JSON)."""
        pending = self._track(action, data, stream=False)
        try:
            frame = await self._next(pending, timeout)
        finally:
            self._forget(pending)
        if isinstance(frame, ActionCallError):
            raise frame
        return frame.get("data")

    async def request_stream(
        self, action: str, data: Any = None, *, timeout: float | None = None
    ) -> AsyncGenerator[Any, None]:
        """Call a stream; yield each chunk's data. ``timeout`` bounds the wait for each frame.
        Leaving the loop early sends ``$cancel``."""
        pending = self._track(action, data, stream=True)
        expected = 0
        finished = False
        try:
            while True:
                frame = await self._next(pending, timeout)
                if isinstance(frame, ActionCallError):
                    finished = frame.code != "timeout" and frame.code != "buffer_full"
                    raise frame
                if frame.get("type") == "result":
                    finished = True
                    return
                if frame.get("seq") != expected:
                    raise ActionCallError(
                        "protocol_error",
                        f"chunk {frame.get('seq')!r} arrived where {expected} was due",
                        action=action,
                    )
                expected += 1
                yield frame.get("data")
        finally:
            self._forget(pending)
            if not finished and pending.sent:
                await self._cancel(pending)

    def on(self, event: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(data)`` (sync or async) for each ``event``; returns an unsubscribe."""
        listeners = self._listeners.setdefault(event, set())
        listeners.add(callback)
        return lambda: listeners.discard(callback)

    def events(self, event: str, parse: Callable[[Any], _T] = lambda data: data) -> EventStream[_T]:
        """Each ``event``'s data (through ``parse``), from now on: ``async for data in ...``.
        Subscribed at once, so nothing pushed before the first ``anext`` is missed;
        ``aclose()`` (or ``async with``) unsubscribes."""
        return EventStream(self, event, parse)

    # -- internals -----------------------------------------------------------------------------

    def _set_state(self, state: ConnectionState) -> None:
        if state != self._state:
            self._state = state
            for callback in list(self._state_listeners):
                callback(state)

    def _track(self, action: str, data: Any, *, stream: bool) -> _Pending:
        request_id = f"c{self._next_id}"
        self._next_id += 1
        message: dict[str, Any] = {"action": action, "id": request_id}
        if data is not None:
            message["data"] = data
        frame = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
        size = len(frame.encode("utf-8"))
        if size > MAX_FRAME_BYTES:
            raise ActionCallError(
                "payload_too_large",
                f"the message is {size} bytes; API Gateway closes the connection on a frame "
                f"over {MAX_FRAME_BYTES} bytes (32 KB)",
                {"limit": MAX_FRAME_BYTES, "size": size},
                action,
            )
        if self._state == "closed":
            raise ActionCallError("closed", "the client is closed", action=action)
        pending = _Pending(action, frame, stream, self.max_buffered)
        if self._socket is not None and self._state == "open":
            self._pending[request_id] = pending
            self._send(pending)
        elif len(self._queue) < self.max_queue:
            self._pending[request_id] = pending
            self._queue.append(pending)
        else:
            raise ActionCallError(
                "queue_full", "too many calls waiting for the connection", action=action
            )
        return pending

    def _send(self, pending: _Pending) -> None:
        assert self._socket is not None
        pending.sent = True
        task = asyncio.ensure_future(self._send_quietly(self._socket, pending.frame))
        self._sends.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._sends.discard)

    @staticmethod
    async def _send_quietly(socket: ClientConnection, frame: str) -> None:
        # A send on a closing socket fails; the reader sees the close and fails the call.
        with contextlib.suppress(ConnectionClosed):
            await socket.send(frame)

    async def _next(
        self, pending: _Pending, timeout: float | None
    ) -> dict[str, Any] | ActionCallError:
        try:
            return await asyncio.wait_for(pending.frames.get(), timeout or self.timeout)
        except TimeoutError:
            return ActionCallError(
                "timeout", f"no answer within {timeout or self.timeout} s", action=pending.action
            )

    def _forget(self, pending: _Pending) -> None:
        for request_id, entry in list(self._pending.items()):
            if entry is pending:
                del self._pending[request_id]
        if pending in self._queue:
            self._queue.remove(pending)

    async def _cancel(self, pending: _Pending) -> None:
        request_id = json.loads(pending.frame)["id"]
        if self._socket is not None and self._state == "open":
            with contextlib.suppress(ConnectionClosed):
                await self._socket.send(json.dumps({"action": "$cancel", "id": request_id}))

    def _fail_all(self, code: str, message: str, *, queued: bool) -> None:
        """Fail the calls in flight (and the queued ones, when ``queued``) with ``code``."""
        for request_id, pending in list(self._pending.items()):
            if pending.sent or queued:
                del self._pending[request_id]
                pending.deliver(ActionCallError(code, message, action=pending.action))
        if queued:
            self._queue.clear()

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                async with connect(
                    self.url, subprotocols=self.subprotocols or None, open_timeout=self.timeout
                ) as socket:
                    attempt = 0
                    await self._serve(socket)
            except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed):
                pass  # refused, unreachable or dropped: back off and try again, below
            except Exception:  # on_open's, say: this connection is lost, the client is not
                logger.exception("mangum-ws client: the connection failed; reconnecting")
            finally:
                self._socket = None
            self._fail_all(
                "connection_lost", "the connection closed before the answer", queued=False
            )
            if self._closing or not self.reconnect:
                break
            if self.max_attempts is not None and attempt >= self.max_attempts:
                break
            self._set_state("reconnecting")
            # Full jitter: a random delay up to min(max_delay, base_delay * 2^attempt).
            await asyncio.sleep(
                random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
            )
            attempt += 1
        self._fail_all("closed", "the client is closed", queued=True)
        self._set_state("closed")

    async def _serve(self, socket: ClientConnection) -> None:
        self._hello_id = None
        self._connected.set()
        if self.sessions:
            await self._greet(socket)
        await self.on_open(socket)
        self._socket = socket
        self._set_state("open")
        self._opened.set()
        queued, self._queue = self._queue, []
        for pending in queued:
            self._send(pending)
        keepalive = asyncio.create_task(self._keep_alive(socket))
        try:
            async for raw in socket:
                if isinstance(raw, str):
                    await self._receive(raw)
        finally:
            keepalive.cancel()

    async def _keep_alive(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(self.keepalive)
                await socket.send('{"action":"$keepalive"}')

    async def _receive(self, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            return  # not a protocol frame: nothing waits for it
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if kind == "event":
            topic, seq = frame.get("topic"), frame.get("seq")
            if isinstance(topic, str) and isinstance(seq, int) and not isinstance(seq, bool):
                await self._topic_event(topic, seq, frame)
            else:
                await self._emit(frame)
            return
        if self._hello_id is not None and frame.get("id") == self._hello_id:
            # A late answer to a $hello that timed out: it still brings the session.
            self._hello_id = None
            if kind == "result":
                await self._greeted(frame)
            return
        pending = self._pending.get(str(frame.get("id")))
        if pending is None:
            return  # an answer nobody waits for any more (timed out, cancelled)
        if kind == "error":
            error = frame.get("error") or {}
            pending.deliver(
                ActionCallError(
                    str(error.get("code")),
                    str(error.get("message")),
                    error.get("details"),
                    frame.get("action"),
                )
            )
        elif kind == "chunk" and pending.frames.qsize() >= pending.max_buffered:
            pending.deliver(
                ActionCallError(
                    "buffer_full",
                    f"more than {pending.max_buffered} chunks waiting to be read",
                    action=pending.action,
                )
            )
            del self._pending[str(frame.get("id"))]
        elif kind in ("result", "chunk"):
            pending.deliver(frame)

    # -- sessions ------------------------------------------------------------------------------

    async def _greet(self, socket: ClientConnection) -> None:
        """``$hello`` first: resume the session from the last seq of each topic. The frames
        before its answer (the replayed events) go to the app; calls wait meanwhile, up to
        ``timeout``: a slow or silent server must not hold them forever."""
        failures = 0
        while True:
            hello_id = self._hello_id = f"h{self._next_id}"
            self._next_id += 1
            data = {
                "session": self._session.token if self._session is not None else None,
                "since": dict(self._last_seq),
                "schema": self.schema_hash,
            }
            await socket.send(json.dumps({"action": "$hello", "id": hello_id, "data": data}))
            answer = await self._answer_to(socket, hello_id)
            if answer is None:
                return  # timed out: a late answer is taken by _receive
            self._hello_id = None
            if answer.get("type") == "result":
                await self._greeted(answer)
                return
            error = answer.get("error")
            code = error.get("code") if isinstance(error, dict) else None
            if code == "unauthorized" and self._session is not None:
                # The token belongs to another principal (a new login): start a new session.
                self._session = None
                continue
            if code == "internal_error" and failures < HELLO_RETRIES:
                # The store failed half-way (throttled, say): moving a session again is harmless.
                await asyncio.sleep(random.uniform(0, self.base_delay * 2**failures))
                failures += 1
                continue
            return  # an older server (unknown_action) or a refused hello: no session

    async def _answer_to(self, socket: ClientConnection, request_id: str) -> dict[str, Any] | None:
        """Read until the answer to ``request_id`` (None after ``timeout``); the frames before
        it are received as usual."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            try:
                # Cancelling websockets' asyncio recv() loses no message.
                raw = await asyncio.wait_for(socket.recv(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return None
            if not isinstance(raw, str):
                continue
            with contextlib.suppress(ValueError):
                frame = json.loads(raw)
                if isinstance(frame, dict) and frame.get("id") == request_id:
                    if frame.get("type") in ("result", "error"):
                        return frame
                    continue
            await self._receive(raw)

    async def _greeted(self, frame: dict[str, Any]) -> None:
        answer = frame.get("data")
        if not isinstance(answer, dict):
            answer = {}  # not a session answer: as an older server's, no session
        lost, replayed, schema_ok = (
            answer.get("lost"),
            answer.get("replayed"),
            answer.get("schema_ok"),
        )
        info = SessionInfo(
            token=str(answer.get("session") or ""),
            resumed=answer.get("resumed") is True,
            replayed=replayed if isinstance(replayed, int) else 0,
            lost=tuple(str(topic) for topic in lost) if isinstance(lost, list) else (),
            schema_ok=schema_ok if isinstance(schema_ok, bool) else None,
        )
        warned = self._session is not None and self._session.schema_ok is False
        self._session = info
        if not info.resumed:
            # A new session: the server numbers nothing for us yet, whatever we saw before.
            for topic in list(self._last_seq):
                await self._forget_topic(topic)
        for topic in info.lost:
            await self._forget_topic(topic)
        callbacks = [self.on_schema_mismatch] if info.schema_ok is False and not warned else []
        if self.on_session is not None:
            callbacks.append(self.on_session)
        for callback in callbacks:
            try:
                callback(info)
            except Exception:  # the app's bug never stops the connection
                logger.exception("mangum-ws client: a session callback raised")

    async def _topic_event(self, topic: str, seq: int, frame: dict[str, Any]) -> None:
        """Hand a topic event to the app once, in seq order: duplicates (replays) are dropped,
        an event ahead of a missing seq waits for it up to ``gap_timeout``."""
        last = self._last_seq.get(topic)
        if last is not None and seq <= last:
            return
        if last is not None and seq > last + 1:
            self._held.setdefault(topic, {})[seq] = frame
            if topic not in self._gap_timers:
                self._gap_timers[topic] = asyncio.create_task(self._gap_timer(topic))
            return
        self._last_seq[topic] = seq
        await self._emit(frame)
        waiting = self._held.get(topic, {})
        while seq + 1 in waiting:
            seq += 1
            self._last_seq[topic] = seq
            await self._emit(waiting.pop(seq))
        if topic in self._held and not waiting:
            del self._held[topic]
            timer = self._gap_timers.pop(topic, None)
            if timer is not None:
                timer.cancel()

    async def _gap_timer(self, topic: str) -> None:
        await asyncio.sleep(self.gap_timeout)
        if self._state != "open":
            # Offline or waiting for a $hello's answer: the missing events come with its replay
            # (or the topic is reported lost), so the wait starts again.
            self._gap_timers[topic] = asyncio.create_task(self._gap_timer(topic))
            return
        self._gap_timers.pop(topic, None)
        await self._skip_gap(topic)

    async def _skip_gap(self, topic: str) -> None:
        """The missing events never came: hand over what waited, in order."""
        waiting = self._held.pop(topic, {})
        for seq in sorted(waiting):
            self._last_seq[topic] = seq
            await self._emit(waiting[seq])

    async def _forget_topic(self, topic: str) -> None:
        timer = self._gap_timers.pop(topic, None)
        if timer is not None:
            timer.cancel()
        await self._skip_gap(topic)
        self._last_seq.pop(topic, None)

    async def _emit(self, frame: dict[str, Any]) -> None:
        for callback in list(self._listeners.get(str(frame.get("event")), ())):
            try:
                result = callback(frame.get("data"))
                if result is not None:
                    await result
            except Exception:  # a listener's bug never stops the socket's reader
                logger.exception("mangum-ws client: a %r listener raised", frame.get("event"))


def _with_query(url: str, query: dict[str, str]) -> str:
    if not query:
        return url
    parts = urlsplit(url)
    joined = "&".join(p for p in (parts.query, urlencode(sorted(query.items()))) if p)
    return urlunsplit(parts._replace(query=joined))
