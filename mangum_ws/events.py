"""The events API Gateway sends a WebSocket API's Lambda integration.

Built field by field where mangum-ws plays API Gateway (the local API Gateway, ``ws.mount``),
and read back strictly where it receives them (the Lambda bridge): whatever the shape of an
event, reading it either gives a :class:`WebSocketEvent` or raises :class:`InvalidEvent`.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

# API Gateway's ids are 16 characters; anything past this is not one of its events.
MAX_CONNECTION_ID_CHARS: Final = 128

# eventType -> the route key API Gateway gives it
EVENT_TYPES: Final = {"CONNECT": "$connect", "MESSAGE": "$default", "DISCONNECT": "$disconnect"}


class InvalidEvent(ValueError):
    """An event that claims to come from a WebSocket API but is not shaped like one."""


class WebSocketEvent(NamedTuple):
    """What one API Gateway WebSocket event says, checked field by field."""

    event_type: str
    connection_id: str
    route_key: str
    request_context: dict[str, Any]
    query: dict[str, str]
    headers: dict[str, str]
    authorizer: dict[str, Any]
    source_ip: str | None
    body: str | None


def claims(event: Any) -> bool:
    """Whether ``event`` says it is a WebSocket event (it may still be malformed): its
    requestContext has an eventType or a connectionId, which no HTTP event's has."""
    if not isinstance(event, dict):
        return False
    context = event.get("requestContext")
    return isinstance(context, dict) and ("eventType" in context or "connectionId" in context)


def _text(value: Any, what: str, *, limit: int | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"{what} must be a non-empty string")
    if limit is not None and len(value) > limit:
        raise InvalidEvent(f"{what} is longer than {limit} characters")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidEvent(f"{what} is not valid unicode") from None
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise InvalidEvent(f"{what} must be an object with string keys")
    return value


def _strings(value: Any, what: str) -> dict[str, str]:
    found = _mapping(value, what)
    if not all(isinstance(v, str) for v in found.values()):
        raise InvalidEvent(f"{what} must map strings to strings")
    return found


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    """Lower-cased header names; repeated headers joined as HTTP does."""
    headers: dict[str, str] = {}
    for name, values in _mapping(event.get("multiValueHeaders"), "multiValueHeaders").items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidEvent("multiValueHeaders must map strings to lists of strings")
        headers[name.lower()] = ", ".join(values)
    for name, value in _strings(event.get("headers"), "headers").items():
        headers.setdefault(name.lower(), value)
    return headers


def _body(event: Mapping[str, Any]) -> str | None:
    body = event.get("body")
    if body is None:
        return None
    if not isinstance(body, str):
        raise InvalidEvent("body must be a string")
    if event.get("isBase64Encoded") is True:
        try:
            return base64.b64decode(body, validate=True).decode()
        except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
            raise InvalidEvent("body is not base64-encoded UTF-8 text") from None
    return body


def read_event(event: Mapping[str, Any]) -> WebSocketEvent:
    """Check a WebSocket event's fields; raise InvalidEvent naming the first one that is wrong."""
    context = event.get("requestContext")
    if not isinstance(context, dict):
        raise InvalidEvent("requestContext must be an object")
    event_type = context.get("eventType")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise InvalidEvent("requestContext.eventType must be CONNECT, MESSAGE or DISCONNECT")
    connection_id = _text(
        context.get("connectionId"), "requestContext.connectionId", limit=MAX_CONNECTION_ID_CHARS
    )
    route_key = context.get("routeKey")
    route_key = EVENT_TYPES[event_type] if route_key is None else route_key
    identity = _mapping(context.get("identity"), "requestContext.identity")
    source_ip = identity.get("sourceIp")
    if source_ip is not None and not isinstance(source_ip, str):
        raise InvalidEvent("requestContext.identity.sourceIp must be a string")
    return WebSocketEvent(
        event_type=event_type,
        connection_id=connection_id,
        route_key=_text(route_key, "requestContext.routeKey"),
        request_context=context,
        query=_strings(event.get("queryStringParameters"), "queryStringParameters"),
        headers=_headers(event),
        authorizer=_mapping(context.get("authorizer"), "requestContext.authorizer"),
        source_ip=source_ip,
        body=_body(event) if event_type == "MESSAGE" else None,
    )


# Building events, as API Gateway does ------------------------------------------------------


def _request_id() -> str:
    return base64.b64encode(os.urandom(11)).decode()


def _request_time(epoch_ms: int) -> str:
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms / 1000))


def now_ms() -> int:
    return int(time.time() * 1000)


def new_connection_id() -> str:
    """An id shaped like API Gateway's (16 characters of base64, e.g. ``L0SM9cOFvHcCIhw=``)."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


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
