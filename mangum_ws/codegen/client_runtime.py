"""The Python client runtime (wire protocol v1). The generator copies this module's source,
from its "runtime" marker line on, into every client.py, after the app's models: a generated client
needs only ``websockets`` and ``pydantic``, never mangum-ws itself.

Its behaviour matches the TypeScript client's (codegen/runtime.ts): calls queued while
(re)connecting, per-call timeouts, reconnect with full-jitter exponential backoff, a keep-alive
under API Gateway's 10-minute idle timeout, and messages over API Gateway's 32 KB frame limit
refused before they are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
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
]

# --- runtime ---

#: API Gateway closes a connection on any frame over 32 KB, and a client sends each message
#: as one frame: a bigger call is refused, with ``payload_too_large``, before it goes out.
MAX_FRAME_BYTES = 32 * 1024

logger = logging.getLogger(__name__)

ConnectionState = Literal["connecting", "open", "reconnecting", "closed"]
EventCallback = Callable[[Any], Awaitable[None] | None]
_T = TypeVar("_T")


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
    ) -> None:
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
        self._opened = asyncio.Event()
        self._closing = False
        self._sends: set[asyncio.Future[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def connection_state(self) -> ConnectionState:
        return self._state

    async def connect(self) -> None:
        """Start connecting (and reconnecting) in the background; wait for the first open."""
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name=f"mangum-ws {self.url}")
        opened = asyncio.create_task(self._opened.wait())
        done, _ = await asyncio.wait(
            {opened, self._runner}, timeout=self.timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if opened not in done:
            opened.cancel()
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
        """Runs after every (re)connect, before queued calls go out: the one place for a
        handshake (and, later, per-topic resumption). The base client has nothing to say."""

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
            for callback in list(self._listeners.get(str(frame.get("event")), ())):
                try:
                    result = callback(frame.get("data"))
                    if result is not None:
                        await result
                except Exception:  # a listener's bug never stops the socket's reader
                    logger.exception("mangum-ws client: a %r listener raised", frame.get("event"))
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


def _with_query(url: str, query: dict[str, str]) -> str:
    if not query:
        return url
    parts = urlsplit(url)
    joined = "&".join(p for p in (parts.query, urlencode(sorted(query.items()))) if p)
    return urlunsplit(parts._replace(query=joined))
