"""Exceptions raised by mangum-ws.

MangumWSError
├── RegistrationError      a handler, event or route cannot be registered (raised at import)
├── MissingDependencyError an optional extra is not installed (names the extra)
├── ConnectionNotReady     a push to a connection whose $connect has not finished
├── SendError              some sends failed for a reason other than "gone"
├── ConnectionGone         the connection no longer exists (API Gateway answers 410)
├── PayloadTooLarge        a message over API Gateway's 128 KB limit, refused before sending
├── StoreError             the connection store could not finish a write (e.g. throttled)
├── InvalidPrincipal       an authorizer's Principal API Gateway would refuse (names the key)
└── ActionError            an application error sent to the caller as a typed error frame
    ├── Unauthorized       the caller is not signed in (code ``unauthorized``)
    └── Forbidden          the caller may not run this action (code ``forbidden``)
Reject                     raised by an authorizer or on_connect hook to refuse the connection
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class MangumWSError(Exception):
    """Base class of every exception this library raises on purpose."""


class RegistrationError(MangumWSError, TypeError):
    """A handler, event or route key that cannot be registered."""


class MissingDependencyError(MangumWSError, ImportError):
    """An optional dependency is missing; the message names the extra that brings it."""


class ConnectionNotReady(MangumWSError):
    """Pushing to a connection during its own $connect: API Gateway would answer 410 Gone."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(
            f"cannot send to connection {connection_id!r} during its $connect: API Gateway only "
            "accepts posts once $connect has returned; send the welcome in reply to the "
            "client's first message instead"
        )
        self.connection_id = connection_id


class ConnectionGone(MangumWSError):
    """The connection is closed or unknown (API Gateway's GoneException, HTTP 410)."""

    def __init__(self, connection_id: str) -> None:
        super().__init__(f"connection {connection_id!r} is gone")
        self.connection_id = connection_id


class PayloadTooLarge(MangumWSError, ValueError):
    """A message larger than API Gateway accepts (128 KB), refused before any call."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds the {limit}-byte WebSocket limit")
        self.size = size
        self.limit = limit


class SendError(MangumWSError):
    """Sends that failed for a reason other than the connection being gone.

    Every id of the batch was attempted; ``gone`` holds the ids that were gone and ``failed``
    maps each failed id to its exception. Failed ids are live connections as far as we know:
    never delete them from subscriptions on the strength of this error.
    """

    def __init__(self, failed: Mapping[str, BaseException], gone: set[str]) -> None:
        self.failed = dict(failed)
        self.gone = set(gone)
        ids = ", ".join(sorted(self.failed)[:5])
        more = "" if len(self.failed) <= 5 else f" and {len(self.failed) - 5} more"
        first = next(iter(self.failed.values()))
        super().__init__(f"{len(self.failed)} send(s) failed ({ids}{more}); first error: {first!r}")


class StoreError(MangumWSError):
    """The connection store could not finish a write, e.g. DynamoDB kept throttling it."""


class InvalidPrincipal(MangumWSError, ValueError):
    """A Principal that API Gateway would refuse: a context value that is not a string, number
    or boolean, a reserved key, or more than 8 KB in all. The message names the key."""


class ActionError(MangumWSError):
    """An application error the caller receives as ``{"type": "error", ...}``.

    ``raise ActionError("room_full", "Room is full", details={"room": "lobby"})``
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: Mapping[str, Any] | Sequence[Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class Reject(Exception):
    """Raised by an on_connect hook (or a local authorizer) to refuse the connection.

    API Gateway turns the non-2xx status into a refused upgrade; locally the socket is
    refused before it opens, with the same HTTP status.
    """

    def __init__(self, status_code: int = 403, message: str = "Forbidden") -> None:
        if not 400 <= status_code <= 599:
            raise ValueError(f"a refusal needs a 4xx or 5xx status, not {status_code}")
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class Unauthorized(ActionError):
    """Raised by an action or a dependency: the caller must sign in (code ``unauthorized``)."""

    def __init__(self, message: str = "not signed in") -> None:
        super().__init__("unauthorized", message)


class Forbidden(ActionError):
    """Raised by an action or a guard: the caller may not do this (code ``forbidden``)."""

    def __init__(self, message: str = "forbidden") -> None:
        super().__init__("forbidden", message)
