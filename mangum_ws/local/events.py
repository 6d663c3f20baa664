"""The events API Gateway sends a WebSocket API's Lambda integration, built field by field."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def _request_id() -> str:
    return base64.b64encode(os.urandom(11)).decode()


def _request_time(epoch_ms: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Peer:
    """What API Gateway knows of a connection, from its upgrade request on."""

    connection_id: str
    source_ip: str
    user_agent: str | None
    connected_at: int = field(default_factory=now_ms)
    authorizer: dict[str, Any] | None = None


@dataclass(frozen=True)
class Stage:
    name: str
    domain_name: str
    api_id: str = "local"


def _context(peer: Peer, stage: Stage, route_key: str, event_type: str) -> dict[str, Any]:
    epoch = now_ms()
    request_id = _request_id()
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": _request_time(epoch),
        "messageDirection": "IN",
        "stage": stage.name,
        "connectedAt": peer.connected_at,
        "requestTimeEpoch": epoch,
        "identity": {"userAgent": peer.user_agent, "sourceIp": peer.source_ip},
        "requestId": request_id,
        "domainName": stage.domain_name,
        "connectionId": peer.connection_id,
        "apiId": stage.api_id,
    }
    if peer.authorizer is not None:
        context["authorizer"] = dict(peer.authorizer)
    return context


def connect_event(
    peer: Peer,
    stage: Stage,
    headers: Sequence[tuple[str, str]],
    query: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    event: dict[str, Any] = {
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "requestContext": _context(peer, stage, "$connect", "CONNECT"),
        "isBase64Encoded": False,
    }
    if query:  # API Gateway leaves both keys out when there is no query string
        multi_query: dict[str, list[str]] = {}
        for name, value in query:
            multi_query.setdefault(name, []).append(value)
        event["queryStringParameters"] = {name: v[-1] for name, v in multi_query.items()}
        event["multiValueQueryStringParameters"] = multi_query
    return event


def message_event(peer: Peer, stage: Stage, route_key: str, body: str) -> dict[str, Any]:
    context = _context(peer, stage, route_key, "MESSAGE")
    context["messageId"] = _request_id()
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event(
    peer: Peer, stage: Stage, status_code: int, reason: str, headers: Mapping[str, str]
) -> dict[str, Any]:
    context = _context(peer, stage, "$disconnect", "DISCONNECT")
    context["disconnectStatusCode"] = status_code
    context["disconnectReason"] = reason
    return {
        "headers": dict(headers),
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "requestContext": context,
        "isBase64Encoded": False,
    }
