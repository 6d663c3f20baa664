"""mangum-ws: type-routed WebSocket RPC for FastAPI on API Gateway + Lambda, and locally."""

__version__ = "0.2.0"  # first: modules of the package read it while it imports

from .app import MangumWS
from .connection import Connection
from .errors import (
    ActionError,
    ConnectionGone,
    ConnectionNotReady,
    MangumWSError,
    MissingDependencyError,
    PayloadTooLarge,
    RegistrationError,
    Reject,
    SendError,
    StoreError,
)
from .gateways import AwsGateway, Gateway, LocalGateway
from .protocol import MAX_MESSAGE_BYTES, PROTOCOL_VERSION, ErrorCode
from .registry import ActionSpec, EventSpec
from .sending import SendReport
from .store import ConnectionRecord, ConnectionStore, DynamoDBStore, InMemoryStore

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "ActionError",
    "ActionSpec",
    "AwsGateway",
    "Connection",
    "ConnectionGone",
    "ConnectionNotReady",
    "ConnectionRecord",
    "ConnectionStore",
    "DynamoDBStore",
    "ErrorCode",
    "EventSpec",
    "Gateway",
    "InMemoryStore",
    "LocalGateway",
    "MangumWS",
    "MangumWSError",
    "MissingDependencyError",
    "PayloadTooLarge",
    "RegistrationError",
    "Reject",
    "SendError",
    "SendReport",
    "StoreError",
    "__version__",
]
