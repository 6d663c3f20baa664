from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..limits import IDLE_TIMEOUT, MAX_CONNECTION_AGE

__all__ = ["IDLE_TIMEOUT", "MAX_CONNECTION_AGE", "Authorizer", "GatewaySettings"]

# Deprecated (declare @ws.authorizer on the MangumWS instead: the emulator runs it as API
# Gateway does). (headers, query) of the upgrade request -> the authorizer context, or None to
# refuse (401); it may also raise mangum_ws.Reject for another status.
Authorizer = Callable[
    [Mapping[str, str], Mapping[str, str]],
    Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None,
]


@dataclass(frozen=True)
class GatewaySettings:
    stage: str = "local"
    route_selection: str = "$request.body.action"
    # Custom route keys; None reads them from the MangumWS behind the handler.
    route_keys: frozenset[str] | None = None
    # Two-way routes: the Lambda's response body is sent to the caller. None reads it from
    # the MangumWS behind the handler (a value that contradicts it is refused).
    route_responses: bool | None = None
    idle_timeout: float = IDLE_TIMEOUT
    max_connection_age: float = MAX_CONNECTION_AGE
    concurrency: int = 1
    function_timeout: float = 30.0
    authorizer: Authorizer | None = None
    # The fan-out queue to consume (an SQS queue URL: AWS's, or moto's server); None consumes
    # the MangumWS's own ``fanout_queue`` when it has one.
    fanout_queue: str | None = None
    # Seconds after which a record the handler reported failed comes back (a local shortcut,
    # see queue_poller); None leaves it to the queue's visibility timeout, as on AWS.
    fanout_retry_after: int | None = None

    def __post_init__(self) -> None:
        if self.authorizer is not None:
            warnings.warn(
                "GatewaySettings(authorizer=f(headers, query)) is deprecated: declare "
                "@ws.authorizer on the MangumWS, which the local API Gateway runs as API "
                "Gateway runs a Lambda REQUEST authorizer",
                DeprecationWarning,
                stacklevel=3,
            )
