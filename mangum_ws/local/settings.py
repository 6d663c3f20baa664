from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

# (headers, query) of the upgrade request -> the authorizer context, or None to refuse (401).
# Like a Lambda REQUEST authorizer; it may also raise mangum_ws.Reject for another status.
Authorizer = Callable[
    [Mapping[str, str], Mapping[str, str]],
    Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None,
]

MAX_MESSAGE_BYTES = 128 * 1024
IDLE_TIMEOUT = 10 * 60.0
MAX_CONNECTION_AGE = 2 * 60 * 60.0


@dataclass(frozen=True)
class GatewaySettings:
    stage: str = "local"
    route_selection: str = "$request.body.action"
    # Custom route keys; None reads them from the MangumWS behind the handler.
    route_keys: frozenset[str] | None = None
    # Two-way routes: the Lambda's response body is sent to the caller.
    route_responses: bool = False
    idle_timeout: float = IDLE_TIMEOUT
    max_connection_age: float = MAX_CONNECTION_AGE
    concurrency: int = 1
    function_timeout: float = 30.0
    authorizer: Authorizer | None = None
