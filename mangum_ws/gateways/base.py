from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Gateway(Protocol):
    """Delivers one message to one connection: the transport behind every send and push."""

    @property
    def is_local(self) -> bool: ...

    async def post(self, connection_id: str, data: bytes) -> None:
        """Deliver ``data`` as one text message; raise ConnectionGone for a closed or unknown id."""
        ...

    async def delete(self, connection_id: str) -> None:
        """Close the connection from the server side; a no-op when it is already gone."""
        ...
