from __future__ import annotations

import time
from collections.abc import Mapping
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

    async def subscribe(self, connection_id: str, topic: str) -> None: ...

    async def unsubscribe(self, connection_id: str, topic: str) -> None: ...

    async def subscribers(self, topic: str) -> set[str]: ...

    async def topics(self, connection_id: str) -> set[str]: ...

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
