"""API Gateway WebSocket events, as literal dicts shaped like the ones Lambda receives."""

from __future__ import annotations

import copy
import json
from typing import Any

DOMAIN = "abcd123xyz.execute-api.us-east-1.amazonaws.com"

_CONTEXT: dict[str, Any] = {
    "extendedRequestId": "W2mLdFdIoAMFQ7w=",
    "requestTime": "25/Nov/2026:03:18:32 +0000",
    "messageDirection": "IN",
    "stage": "prod",
    "connectedAt": 1795835912419,
    "requestTimeEpoch": 1795835912420,
    "identity": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64)", "sourceIp": "203.0.113.7"},
    "requestId": "W2mLdFdIoAMFQ7w=",
    "domainName": DOMAIN,
    "apiId": "abcd123xyz",
}


def _context(connection_id: str, route_key: str, event_type: str, **extra: Any) -> dict[str, Any]:
    context = copy.deepcopy(_CONTEXT)
    context.update(routeKey=route_key, eventType=event_type, connectionId=connection_id, **extra)
    return context


def connect_event(
    connection_id: str = "L0SM9cOFvHcCIhw=",
    *,
    query: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = None,
    subprotocol: str | None = None,
) -> dict[str, Any]:
    headers = {
        "Host": DOMAIN,
        "Origin": "https://chat.example.com",
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "X-Amzn-Trace-Id": "Root=1-6744e0d8-1b2c3d4e5f60718293a4b5c6",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if subprotocol:
        headers["Sec-WebSocket-Protocol"] = subprotocol
    event: dict[str, Any] = {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "requestContext": _context(connection_id, "$connect", "CONNECT"),
        "isBase64Encoded": False,
    }
    if query is not None:  # API Gateway omits both keys when there is no query string
        event["queryStringParameters"] = dict(query)
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    if authorizer is not None:
        event["requestContext"]["authorizer"] = dict(authorizer)
    return event


def message_event(
    body: Any = None,
    connection_id: str = "L0SM9cOFvHcCIhw=",
    *,
    route_key: str = "$default",
    raw: str | None = None,
    base64_body: str | None = None,
    message_id: str | None = "GXLKJfX4FiACG1w=",
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A MESSAGE event: ``body`` is JSON-encoded, ``raw`` sent as is, ``base64_body`` flagged."""
    event: dict[str, Any] = {
        "requestContext": _context(connection_id, route_key, "MESSAGE", messageId=message_id),
        "isBase64Encoded": base64_body is not None,
    }
    if base64_body is not None:
        event["body"] = base64_body
    elif raw is not None:
        event["body"] = raw
    elif body is not None:
        event["body"] = json.dumps(body)
    if authorizer is not None:
        event["requestContext"]["authorizer"] = dict(authorizer)
    return event


def disconnect_event(
    connection_id: str = "L0SM9cOFvHcCIhw=",
    *,
    status_code: int = 1001,
    reason: str = "Going away",
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    headers = {"Host": DOMAIN, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    event: dict[str, Any] = {
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "requestContext": _context(
            connection_id,
            "$disconnect",
            "DISCONNECT",
            disconnectStatusCode=status_code,
            disconnectReason=reason,
        ),
        "isBase64Encoded": False,
    }
    if authorizer is not None:
        event["requestContext"]["authorizer"] = dict(authorizer)
    return event


def rest_api_event(path: str, body: str = "{}", method: str = "POST") -> dict[str, Any]:
    """An ordinary REST API (v1) proxy event, as an HTTP caller would produce."""
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {"Host": DOMAIN, "Content-Type": "application/json"},
        "multiValueHeaders": {"Host": [DOMAIN], "Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "198.51.100.9"},
            "domainName": DOMAIN,
            "apiId": "abcd123xyz",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def http_api_event(path: str, body: str = "{}", method: str = "POST") -> dict[str, Any]:
    """An HTTP API (payload v2) event."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": DOMAIN, "content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcd123xyz",
            "domainName": DOMAIN,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.9",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "25/Nov/2026:03:18:32 +0000",
            "timeEpoch": 1795835912420,
        },
        "body": body,
        "isBase64Encoded": False,
    }


class FakeLambdaContext:
    """The attributes of Lambda's context object (no real one exists outside Lambda)."""

    function_name = "chat"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chat"
    memory_limit_in_mb = 512
    aws_request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    log_group_name = "/aws/lambda/chat"
    log_stream_name = "2026/11/25/[$LATEST]abcdef"
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def authorizer_event(
    connection_id: str = "L0SM9cOFvHcCIhw=",
    *,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The input of a WebSocket API's Lambda REQUEST authorizer, shaped as in API Gateway's
    docs ("Control access to WebSocket APIs with AWS Lambda REQUEST authorizers")."""
    event = connect_event(connection_id, query=query)
    del event["isBase64Encoded"]
    for name, value in (headers or {}).items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    return {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcd123xyz/prod/$connect",
        **event,
        "stageVariables": {},
    }
