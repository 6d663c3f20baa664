"""Streaming actions: each value an async generator yields goes out as a chunk, in order, and a
``$cancel`` from any invocation stops it.

A cancel that reaches the process running the stream stops it at once (the generator's
``finally`` runs). On Lambda it usually reaches another invocation, in another process: it is
written to the store, which the running stream reads at most every ``CANCEL_POLL_SECONDS``
(two reads a second, and none during the first half second), so it stops within about that.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Final, NamedTuple

from pydantic import ValidationError

from .connection import Connection
from .errors import ActionError, ConnectionGone
from .limits import fits
from .protocol import (
    CANCEL,
    ErrorCode,
    chunk_frame,
    echo,
    error_frame,
    internal_error,
    result_frame,
)
from .registry import ActionSpec
from .store import ConnectionStore

logger = logging.getLogger("mangum_ws")

CANCEL_POLL_SECONDS: Final = 0.5

Send = Callable[[str], Awaitable[None]]
StreamKey = tuple[str, str]  # (connection id, stream id)


class RunningStreams:
    """The streams this process runs, each with the means to stop it from any thread."""

    def __init__(self) -> None:
        self._tasks: dict[StreamKey, tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]]] = {}
        self._cancelled: set[StreamKey] = set()
        # The local API Gateway runs invocations in threads, each with its own event loop.
        self._lock = threading.Lock()

    def __contains__(self, key: StreamKey) -> bool:
        return key in self._tasks

    def add(self, key: StreamKey, task: asyncio.Task[Any]) -> None:
        with self._lock:
            self._tasks[key] = (asyncio.get_running_loop(), task)

    def discard(self, key: StreamKey) -> bool:
        """Forget the stream; True when it was cancelled on request."""
        with self._lock:
            self._tasks.pop(key, None)
            if key in self._cancelled:
                self._cancelled.discard(key)
                return True
            return False

    def cancel(self, key: StreamKey) -> bool:
        with self._lock:
            found = self._tasks.get(key)
            if found is None:
                return False
            self._cancelled.add(key)
        loop, task = found
        # asyncio's cancel, not a cancel scope's: one CancelledError, so a generator's
        # ``finally`` that awaits (closing a model's HTTP stream, say) still runs to its end.
        loop.call_soon_threadsafe(task.cancel)
        return True


class StreamSupport(NamedTuple):
    """What a stream needs beyond the message: where chunks go, and where cancels meet."""

    send: Send
    running: RunningStreams
    store: ConnectionStore
    # Called when a message turns out to be a stream: a socket path frees the message's slot,
    # since a stream lives long and the next message may be the $cancel that stops it.
    release: Callable[[], None] = lambda: None
    # The stream is in the store already: a background invocation's, noted by the MESSAGE
    # invocation that launched it, so that a $cancel overtaking the launch finds it.
    noted: bool = False


async def cancel(support: StreamSupport, conn: Connection, stream_id: Any) -> str | None:
    """A ``$cancel``: the stream answers with ``cancelled``; an unknown one is answered here."""
    if not isinstance(stream_id, str):
        return error_frame(
            ErrorCode.BAD_REQUEST, "'$cancel' needs the 'id' of the stream", action=CANCEL
        )
    key = (conn.connection_id, stream_id)
    if support.running.cancel(key) or await support.store.cancel_stream(*key):
        return None
    return error_frame(
        ErrorCode.BAD_REQUEST,
        f"no stream {echo(stream_id)} is running on this connection",
        request_id=stream_id,
        action=CANCEL,
    )


async def _watch_store(store: ConnectionStore, key: StreamKey, running: RunningStreams) -> None:
    while True:
        await asyncio.sleep(CANCEL_POLL_SECONDS)
        try:
            cancelled = await store.stream_cancelled(*key)
        except Exception as exc:  # throttled, say: the next read may do; the stream goes on
            logger.warning("could not read whether stream %r was cancelled: %r", key[1], exc)
            continue
        if cancelled:
            running.cancel(key)
            return


async def _pump(
    spec: ActionSpec, generator: AsyncGenerator[Any, None], stream_id: str, send: Send
) -> str | None:
    """Send every chunk; return the frame that ends the stream."""
    assert spec.output_adapter is not None  # a stream always has a chunk type
    seq = 0
    try:
        async for value in generator:
            try:
                chunk = spec.output_adapter.validate_python(value)
            except ValidationError as exc:
                logger.error(
                    "stream %r yielded a chunk that does not fit %r:\n%s",
                    spec.name,
                    spec.output_type,
                    exc,
                )
                return internal_error(stream_id, spec.name)
            frame = chunk_frame(stream_id, spec.name, seq, chunk)
            if not fits(frame):
                logger.error("stream %r yielded a chunk over 128 KB", spec.name)
                return internal_error(stream_id, spec.name)
            await send(frame)
            seq += 1
    except ActionError as exc:
        return error_frame(
            exc.code, exc.message, request_id=stream_id, action=spec.name, details=exc.details
        )
    except ConnectionGone:
        return None  # nobody left to tell
    finally:
        await generator.aclose()  # a no-op when it ended; its finally runs when it did not
    return result_frame(stream_id, spec.name, None)


def _cancelled(spec: ActionSpec, stream_id: str) -> str:
    return error_frame(ErrorCode.CANCELLED, "cancelled", request_id=stream_id, action=spec.name)


async def run_stream(
    spec: ActionSpec,
    kwargs: dict[str, Any],
    stream_id: str,
    conn: Connection,
    support: StreamSupport,
) -> str | None:
    """Send each chunk as it comes; return the frame that ends the stream (None: nobody left
    to tell). An exception other than ActionError propagates, after the cleanup."""
    key = (conn.connection_id, stream_id)
    if key in support.running:
        return error_frame(
            ErrorCode.BAD_REQUEST,
            "a stream with this id is already running on this connection",
            request_id=stream_id,
            action=spec.name,
        )
    support.release()
    if not support.noted:
        await support.store.open_stream(*key)
    elif await support.store.stream_cancelled(*key):  # before it started
        await support.store.close_stream(*key)
        return _cancelled(spec, stream_id)
    pump = asyncio.ensure_future(_pump(spec, spec.func(**kwargs), stream_id, support.send))
    support.running.add(key, pump)
    watcher = asyncio.ensure_future(_watch_store(support.store, key, support.running))
    try:
        return await pump
    except asyncio.CancelledError:
        if support.running.discard(key):  # cancelled by a $cancel, not by the server
            return _cancelled(spec, stream_id)
        raise
    finally:
        watcher.cancel()
        support.running.discard(key)
        try:
            await support.store.close_stream(*key)
        except Exception:  # it expires by TTL; the caller still gets the stream's end
            logger.exception("could not forget stream %r of connection %s", stream_id, key[0])
