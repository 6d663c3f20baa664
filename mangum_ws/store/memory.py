from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from .base import ConnectionRecord


class InMemoryStore:
    """The local default: this process's memory. On Lambda every instance would have its own,
    so deployed apps use :class:`DynamoDBStore`."""

    def __init__(self) -> None:
        self._connections: dict[str, ConnectionRecord] = {}
        self._topics: dict[str, set[str]] = {}
        self._subscriptions: dict[str, set[str]] = {}
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
        for topic in self._subscriptions.pop(connection_id, set()):
            members = self._topics.get(topic)
            if members is not None:
                members.discard(connection_id)
                if not members:
                    del self._topics[topic]

    async def subscribe(self, connection_id: str, topic: str) -> None:
        self._topics.setdefault(topic, set()).add(connection_id)
        self._subscriptions.setdefault(connection_id, set()).add(topic)

    async def unsubscribe(self, connection_id: str, topic: str) -> None:
        self._topics.get(topic, set()).discard(connection_id)
        self._subscriptions.get(connection_id, set()).discard(topic)

    async def subscribers(self, topic: str) -> set[str]:
        return set(self._topics.get(topic, ()))

    async def topics(self, connection_id: str) -> set[str]:
        return set(self._subscriptions.get(connection_id, ()))

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
