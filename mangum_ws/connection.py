"""The caller of an action or hook: who it is and how to answer it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .sending import SendReport


class Sender(Protocol):
    async def send_to_connection(self, connection_id: str, data: Any) -> bool: ...

    async def emit(self, event: str, data: Any, *, connection_ids: Iterable[str]) -> set[str]: ...

    async def publish(self, topic: str, event: str, data: Any) -> SendReport: ...


@dataclass(frozen=True, slots=True, eq=False)  # identity: usable in sets and as a dict key
class Connection:
    """One WebSocket connection, as seen by a single event.

    Like API Gateway, ``query`` and ``headers`` are only known on the ``$connect`` event; the
    ``authorizer`` context given at connect comes back on every later event of the
    connection, on Lambda and locally alike.
    """

    connection_id: str
    sender: Sender = field(repr=False, compare=False)
    route_key: str = "$default"
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    authorizer: Mapping[str, Any] = field(default_factory=dict)
    source_ip: str | None = None
    # The raw API Gateway requestContext on Lambda, a look-alike locally.
    request_context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def principal(self) -> str | None:
        """Who connected: the authorizer's ``principalId``, as API Gateway delivers it on every
        event of the connection (None without an authorizer)."""
        found = self.authorizer.get("principalId")
        return found if isinstance(found, str) else None

    async def send(self, data: Any) -> bool:
        """Send raw data (str, or JSON-serialisable); False when the connection is gone."""
        return await self.sender.send_to_connection(self.connection_id, data)

    async def push(self, event: str, data: Any) -> bool:
        """Push a registered event to this connection; False when it is gone."""
        gone = await self.sender.emit(event, data, connection_ids=(self.connection_id,))
        return not gone
