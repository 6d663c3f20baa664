"""The Mangum custom handler: API Gateway WebSocket events in, the event core's answer out.

Mangum runs the FastAPI app with the scope this handler builds: a POST to
``/internal/websocket/{connect,disconnect,sendmessage}/{id}`` (or ``.../background`` for the
asynchronous invocation that runs a background action, ``.../fanout`` for a batch of the
fan-out queue's records) carrying an :class:`Invocation`.
Only this handler can put that object in a scope, and the internal route matches nothing
else (internal_routes.py), so no HTTP request can act as a connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NamedTuple

from mangum.types import LambdaConfig, LambdaContext, LambdaEvent, LambdaHandler, Response, Scope
from pydantic_core import from_json

from .background import is_background
from .events import claims
from .lambda_authorizer import is_authorizer_event, lambda_result

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


def _path(event: LambdaEvent) -> str:
    if is_background(event):
        return f"{INTERNAL_PREFIX}/background"
    if is_authorizer_event(event):
        return f"{INTERNAL_PREFIX}/authorize"
    if "Records" in event:  # claimed, so a batch of the fan-out queue
        return f"{INTERNAL_PREFIX}/fanout"
    request_context = event["requestContext"]
    event_type = request_context.get("eventType")
    kind = _PATHS.get(event_type, "invalid") if isinstance(event_type, str) else "invalid"
    connection_id = request_context.get("connectionId")
    # The id is there for logs and middleware only: routing never reads it, and an id that is
    # not printable ASCII (API Gateway's never are) is left out of the path.
    if isinstance(connection_id, str) and connection_id.isascii() and connection_id.isprintable():
        return f"{INTERNAL_PREFIX}/{kind}/{connection_id}"
    return f"{INTERNAL_PREFIX}/{kind}"


def make_lambda_handler(owner: MangumWS) -> type[LambdaHandler]:
    """A Mangum custom handler class bound to one MangumWS."""

    class WebSocketHandler:
        # Lets tools that only hold the Lambda handler (the local emulator) read the registry.
        mangum_ws = owner

        @classmethod
        def infer(cls, event: LambdaEvent, context: LambdaContext, config: LambdaConfig) -> bool:
            # Claimed on eventType alone: a malformed WebSocket event is answered with a 400
            # by the core, not passed on to a handler that would misread it. So is anything
            # that claims to be a background invocation: a forged one is answered with a 403.
            # An authorizer event (its requestContext looks like $connect's) gets a policy.
            return (
                claims(event)
                or is_background(event)
                or is_authorizer_event(event)
                or cls.claims_queue(event)
            )

        @staticmethod
        def claims_queue(event: LambdaEvent) -> bool:
            # Only with a queue configured, and only records of that queue (fanout_queue.py).
            return owner.fanout is not None and owner.fanout.claims(event)

        def __init__(
            self, event: LambdaEvent, context: LambdaContext, config: LambdaConfig
        ) -> None:
            self.event = event
            self.context = context
            self.config = config

        @property
        def body(self) -> bytes:
            return b""  # the core reads the message from the event itself

        @property
        def scope(self) -> Scope:
            request_context = self.event.get("requestContext")
            if not isinstance(request_context, dict):  # a background invocation's payload
                request_context = {}
            domain = request_context.get("domainName")
            identity = request_context.get("identity")
            source_ip = identity.get("sourceIp") if isinstance(identity, dict) else None
            return {
                "type": "http",
                "http_version": "1.1",
                "method": "POST",
                "headers": [[b"content-type", b"application/json"]],
                "path": _path(self.event),
                "raw_path": None,
                "root_path": "",
                "scheme": "https",
                "query_string": b"",
                "server": (domain if isinstance(domain, str) else "mangum", 443),
                "client": (source_ip, 0) if isinstance(source_ip, str) else None,
                "asgi": {"version": "3.0", "spec_version": "2.0"},
                "aws.event": self.event,
                "aws.context": self.context,
                INVOCATION_KEY: Invocation(owner, self.event, self.context),
            }

        def __call__(self, response: Response) -> dict[str, Any]:
            if is_authorizer_event(self.event):
                return lambda_result(response["status"], response["body"])
            if self.claims_queue(self.event):  # SQS reads {"batchItemFailures": [...]}
                answer: dict[str, Any] = from_json(response["body"] or b"{}")
                return answer
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
