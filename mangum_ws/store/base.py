from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    """What is kept of a connection from its $connect on, for later invocations to read.

    ``state`` is the application's own (``ws.set_state``): a JSON object, empty at $connect.
    """

    connection_id: str
    connected_at: float = field(default_factory=time.time)
    source_ip: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    authorizer: Mapping[str, Any] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)
    # The token of the session this connection carries ($hello), None before one.
    session: str | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session (``$hello``): what a reconnecting client takes back to its new connection.

    ``principal`` is the authorizer's principalId it was minted under (None: anonymous).
    ``topics`` (topic -> the seq it was subscribed after) and ``state`` are *parked* here when
    the connection closes; while it is open they live with ``connection_id`` itself.
    """

    token: str
    principal: str | None
    connection_id: str | None
    expires_at: float
    topics: Mapping[str, int] = field(default_factory=dict)
    state: Mapping[str, Any] = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.expires_at > time.time()


@dataclass(frozen=True, slots=True)
class TopicHistory:
    """A topic's retained events after some seq: ``head`` is the last seq it handed out (0:
    none yet), ``events`` the (seq, frame) pairs still kept, oldest first."""

    head: int
    events: Sequence[tuple[int, str]]


# seq -> the event frame carrying it: built once the store has numbered the event.
FrameBuilder = Callable[[int], str]


@runtime_checkable
class ConnectionStore(Protocol):
    """Connections and their topic subscriptions, shared by every invocation."""

    async def add(self, record: ConnectionRecord) -> None: ...

    async def get(self, connection_id: str) -> ConnectionRecord | None: ...

    async def remove(self, connection_id: str) -> None:
        """Forget the connection and all its subscriptions; a no-op for an unknown id."""
        ...

    async def set_state(self, connection_id: str, state: Mapping[str, Any]) -> bool:
        """Replace the connection's state (a JSON object); False for an unknown connection."""
        ...

    async def subscribe(self, connection_id: str, topic: str, after: int | None = None) -> None:
        """Subscribe from the topic's events numbered past ``after`` (None: from now on)."""
        ...

    async def unsubscribe(self, connection_id: str, topic: str) -> None: ...

    async def subscribers(self, topic: str) -> set[str]: ...

    async def topics(self, connection_id: str) -> set[str]: ...

    async def subscriptions(self, connection_id: str) -> dict[str, int]:
        """Topic -> the seq the subscription started after."""
        ...

    # Ordered topics: each published event gets the topic's next seq, and the most recent ones
    # are kept for a while so that a resuming session can be sent what it missed.

    async def append_event(
        self, topic: str, frame_for: FrameBuilder, keep: int, ttl_seconds: float
    ) -> str:
        """Number the topic's next event atomically, keep its frame (the last ``keep`` frames
        of a topic, each for ``ttl_seconds``) and return it."""
        ...

    async def history(self, topic: str, after: int) -> TopicHistory:
        """The topic's head and its kept events numbered past ``after``, in order."""
        ...

    # Sessions: a token, its principal, its connection, and what is parked while it has none.

    async def put_session(self, record: SessionRecord, *, if_connection: str | None = None) -> bool:
        """Write the session; with ``if_connection``, only while it still belongs to that
        connection (False otherwise)."""
        ...

    async def get_session(self, token: str) -> SessionRecord | None:
        """The session, or None when unknown or expired."""
        ...

    async def bind_session(self, connection_id: str, token: str) -> bool:
        """Note the connection's session token; False for an unknown connection."""
        ...

    # Streams: a $cancel may reach another invocation (on Lambda, another process) than the
    # one running the stream; the store is where they meet.

    async def open_stream(self, connection_id: str, stream_id: str) -> None:
        """Note a running stream, so that a cancel from anywhere can find it."""
        ...

    async def close_stream(self, connection_id: str, stream_id: str) -> None: ...

    async def cancel_stream(self, connection_id: str, stream_id: str) -> bool:
        """Ask a running stream to stop; False when no such stream is running."""
        ...

    async def stream_cancelled(self, connection_id: str, stream_id: str) -> bool: ...
