from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .sockets import SocketGateway


@runtime_checkable
class Gateway(Protocol):
    """Delivers one message to one connection: the transport behind every send and push."""

    @property
    def sockets(self) -> SocketGateway | None:
        """The gateway that owns this process's open sockets (``ws.mount`` registers them
        there), or None when connections live elsewhere (API Gateway)."""
        ...

    def learn_endpoint(self, request_context: Mapping[str, Any]) -> None:
        """Called with every API Gateway event's requestContext before it is handled."""
        ...

    async def post(self, connection_id: str, data: bytes) -> None:
        """Deliver ``data`` as one text message; raise ConnectionGone for a closed or unknown id."""
        ...

    async def delete(self, connection_id: str) -> None:
        """Close the connection from the server side; a no-op when it is already gone."""
        ...
