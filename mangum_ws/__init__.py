"""mangum-ws: type-routed WebSocket RPC for FastAPI on API Gateway + Lambda, and locally."""

__version__ = "0.3.1"  # first: modules of the package read it while it imports

import warnings
from typing import Any

from .app import MangumWS
from .auth import ConnectRequest, Principal
from .connection import Connection
from .errors import (
    ActionError,
    ConnectionGone,
    ConnectionNotReady,
    Forbidden,
    InvalidPrincipal,
    MangumWSError,
    MissingDependencyError,
    PayloadTooLarge,
    RegistrationError,
    Reject,
    SendError,
    StoreError,
    Unauthorized,
)
from .gateways import AwsGateway, Gateway
from .protocol import ErrorCode
from .registry import EventSpec
from .sending import SendReport
from .store import ConnectionRecord, ConnectionStore, DynamoDBStore, InMemoryStore

__all__ = [
    "ActionError",
    "AwsGateway",
    "ConnectRequest",
    "Connection",
    "ConnectionGone",
    "ConnectionNotReady",
    "ConnectionRecord",
    "ConnectionStore",
    "DynamoDBStore",
    "ErrorCode",
    "EventSpec",
    "Forbidden",
    "Gateway",
    "InMemoryStore",
    "InvalidPrincipal",
    "MangumWS",
    "MangumWSError",
    "MissingDependencyError",
    "PayloadTooLarge",
    "Principal",
    "RegistrationError",
    "Reject",
    "SendError",
    "SendReport",
    "StoreError",
    "Unauthorized",
    "__version__",
]

# Names that left the top level in 0.2: still importable, with a warning saying where they went.
_MOVED = {
    "LocalGateway": ("mangum_ws.gateways", "SocketGateway"),
    "ActionSpec": ("mangum_ws.registry", "ActionSpec"),
    "MAX_MESSAGE_BYTES": ("mangum_ws.limits", "MAX_MESSAGE_BYTES"),
    "PROTOCOL_VERSION": ("mangum_ws.protocol", "PROTOCOL_VERSION"),
}


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(f"module 'mangum_ws' has no attribute {name!r}")
    module, attribute = _MOVED[name]
    warnings.warn(
        f"mangum_ws.{name} is deprecated; use {module}.{attribute}",
        DeprecationWarning,
        stacklevel=2,
    )
    import importlib

    return getattr(importlib.import_module(module), attribute)
