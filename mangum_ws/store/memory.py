from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from .base import ConnectionRecord, FrameBuilder, SessionRecord, TopicHistory


class InMemoryStore:
    """The local default: this process's memory. On Lambda every instance would have its own,
    so deployed apps use :class:`DynamoDBStore`."""

    def __init__(self) -> None:
        self._connections: dict[str, ConnectionRecord] = {}
        self._topics: dict[str, set[str]] = {}
        # connection id -> topic -> the seq its subscription started after
        self._subscriptions: dict[str, dict[str, int]] = {}
        self._heads: dict[str, int] = {}
        self._events: dict[str, deque[tuple[int, float, str]]] = {}  # (seq, expiry, frame)
        self._sessions: dict[str, SessionRecord] = {}
        # Numbering and session writes from the local API Gateway's Lambda threads at once.
        self._lock = threading.Lock()
        self._writes = 0
        # connection id -> stream id -> cancel requested. By connection, so that remove() never
        # iterates a dict that another thread (the local API Gateway's Lambda environments
        # share this store) may be changing.
        self._streams: dict[str, dict[str, bool]] = {}

    async def add(self, record: ConnectionRecord) -> None:
        self._connections[record.connection_id] = record

    async def get(self, connection_id: str) -> ConnectionRecord | None:
        return self._connections.get(connection_id)

    async def set_state(self, connection_id: str, state: Mapping[str, Any]) -> bool:
        record = self._connections.get(connection_id)
        if record is None:
            return False
        # Through JSON, as DynamoDBStore keeps it: what cannot be stored there fails here too,
        # and the state read back is a copy in JSON's types (tuples come back as lists).
        copy = json.loads(json.dumps(dict(state)))
        self._connections[connection_id] = dataclasses.replace(record, state=copy)
        return True

    async def remove(self, connection_id: str) -> None:
        self._connections.pop(connection_id, None)
        self._streams.pop(connection_id, None)
        for topic in self._subscriptions.pop(connection_id, {}):
            members = self._topics.get(topic)
            if members is not None:
                members.discard(connection_id)
                if not members:
                    del self._topics[topic]

    async def subscribe(self, connection_id: str, topic: str, after: int | None = None) -> None:
        start = self._heads.get(topic, 0) if after is None else after
        self._subscriptions.setdefault(connection_id, {})[topic] = start
        self._topics.setdefault(topic, set()).add(connection_id)

    async def unsubscribe(self, connection_id: str, topic: str) -> None:
        self._topics.get(topic, set()).discard(connection_id)
        self._subscriptions.get(connection_id, {}).pop(topic, None)

    async def subscribers(self, topic: str) -> set[str]:
        return set(self._topics.get(topic, ()))

    async def topics(self, connection_id: str) -> set[str]:
        return set(self._subscriptions.get(connection_id, ()))

    async def subscriptions(self, connection_id: str) -> dict[str, int]:
        return dict(self._subscriptions.get(connection_id, {}))

    async def append_event(
        self, topic: str, frame_for: FrameBuilder, keep: int, ttl_seconds: float
    ) -> str:
        with self._lock:
            seq = self._heads.get(topic, 0) + 1
            frame = frame_for(seq)
            self._heads[topic] = seq
            kept = self._events.get(topic)
            if kept is None or kept.maxlen != keep:
                kept = self._events[topic] = deque(kept or (), maxlen=keep)
            kept.append((seq, time.time() + ttl_seconds, frame))
        return frame

    async def history(self, topic: str, after: int) -> TopicHistory:
        now = time.time()
        with self._lock:
            head = self._heads.get(topic, 0)
            kept = list(self._events.get(topic, ()))
        return TopicHistory(
            head, [(seq, frame) for seq, expiry, frame in kept if seq > after and expiry > now]
        )

    async def put_session(self, record: SessionRecord, *, if_connection: str | None = None) -> bool:
        with self._lock:
            current = self._sessions.get(record.token)
            if if_connection is not None and (
                current is None or current.connection_id != if_connection
            ):
                return False
            self._sessions[record.token] = record
            self._writes += 1
            if self._writes % 256 == 0:  # now and then, expired sessions go
                for token in [t for t, s in self._sessions.items() if not s.live]:
                    del self._sessions[token]
        return True

    async def get_session(self, token: str) -> SessionRecord | None:
        record = self._sessions.get(token)
        return record if record is not None and record.live else None

    async def bind_session(self, connection_id: str, token: str) -> bool:
        record = self._connections.get(connection_id)
        if record is None:
            return False
        self._connections[connection_id] = dataclasses.replace(record, session=token)
        return True

    async def open_stream(self, connection_id: str, stream_id: str) -> None:
        self._streams.setdefault(connection_id, {})[stream_id] = False

    async def close_stream(self, connection_id: str, stream_id: str) -> None:
        self._streams.get(connection_id, {}).pop(stream_id, None)

    async def cancel_stream(self, connection_id: str, stream_id: str) -> bool:
        streams = self._streams.get(connection_id, {})
        if stream_id not in streams:
            return False
        streams[stream_id] = True
        return True

    async def stream_cancelled(self, connection_id: str, stream_id: str) -> bool:
        return self._streams.get(connection_id, {}).get(stream_id, False)
