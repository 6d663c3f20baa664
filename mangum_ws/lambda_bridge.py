"""The Mangum custom handler: API Gateway WebSocket events in, internal ASGI requests out.

Each WebSocket event becomes a POST to ``/internal/websocket/{connect,disconnect,sendmessage}/{id}``
carrying an :class:`Invocation` in the ASGI scope. Only this handler can put that object there,
so the internal routes refuse any request that arrived as ordinary HTTP.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from mangum.types import LambdaConfig, LambdaContext, LambdaEvent, LambdaHandler, Response, Scope

from .connection import Connection

if TYPE_CHECKING:
    from .app import MangumWS

INVOCATION_KEY: Final = "mangum_ws.invocation"
INTERNAL_PREFIX: Final = "/internal/websocket"
_PATHS: Final = {"CONNECT": "connect", "DISCONNECT": "disconnect", "MESSAGE": "sendmessage"}


class Invocation(NamedTuple):
    """Proof, inside the ASGI scope, that a request came from an API Gateway WebSocket event."""

    owner: MangumWS
    event: LambdaEvent
    context: LambdaContext


def is_websocket_event(event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    context = event.get("requestContext")
    return (
        isinstance(context, dict)
        and context.get("eventType") in _PATHS
        and isinstance(context.get("connectionId"), str)
        and bool(context["connectionId"])
    )


def _lower_headers(event: LambdaEvent) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, values in (event.get("multiValueHeaders") or {}).items():
        if isinstance(values, list):
            headers[name.lower()] = ", ".join(str(v) for v in values)
    for name, value in (event.get("headers") or {}).items():
        headers.setdefault(name.lower(), str(value))
    return headers


def connection_from_event(event: LambdaEvent, owner: MangumWS) -> Connection:
    context = event["requestContext"]
    return Connection(
        connection_id=context["connectionId"],
        sender=owner,
        route_key=str(context.get("routeKey") or "$default"),
        query=dict(event.get("queryStringParameters") or {}),
        headers=_lower_headers(event),
        authorizer=dict(context.get("authorizer") or {}),
        source_ip=(context.get("identity") or {}).get("sourceIp"),
        request_context=context,
    )


def message_body(event: LambdaEvent) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return body.encode() if isinstance(body, str) else bytes(body)
    return body.encode() if isinstance(body, str) else bytes(body)


def make_lambda_handler(owner: MangumWS) -> type[LambdaHandler]:
    """A Mangum custom handler class bound to one MangumWS."""

    class WebSocketHandler:
        # Lets tools that only hold the Lambda handler (the local emulator) read the registry.
        mangum_ws = owner

        @classmethod
        def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
            return is_websocket_event(event)

        def __init__(
            self, event: LambdaEvent, context: LambdaContext, config: LambdaConfig
        ) -> None:
            self.event = event
            self.context = context
            self.config = config

        @property
        def body(self) -> bytes:
            return message_body(self.event)

        @property
        def scope(self) -> Scope:
            request_context = self.event["requestContext"]
            kind = _PATHS[request_context["eventType"]]
            connection_id = request_context["connectionId"]
            path = f"{INTERNAL_PREFIX}/{kind}/{connection_id}"
            source_ip = (request_context.get("identity") or {}).get("sourceIp")
            return {
                "type": "http",
                "http_version": "1.1",
                "method": "POST",
                "headers": [[b"content-type", b"application/json"]],
                "path": path,
                "raw_path": None,
                "root_path": "",
                "scheme": "https",
                "query_string": b"",
                "server": (request_context.get("domainName") or "mangum", 443),
                "client": (source_ip, 0),
                "asgi": {"version": "3.0", "spec_version": "2.0"},
                "aws.event": self.event,
                "aws.context": self.context,
                INVOCATION_KEY: Invocation(owner, self.event, self.context),
            }

        def __call__(self, response: Response) -> dict[str, Any]:
            result: dict[str, Any] = {"statusCode": response["status"]}
            headers = {
                k.decode().lower(): v.decode()
                for k, v in response["headers"]
                if k.lower() not in (b"content-length", b"content-type")
            }
            if headers:
                result["headers"] = headers
            if response["body"]:
                result["body"] = response["body"].decode()
            return result

    return WebSocketHandler
