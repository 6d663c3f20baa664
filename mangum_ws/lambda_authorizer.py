"""The function's side of API Gateway's Lambda REQUEST authorizer on ``$connect``.

API Gateway invokes the function with ``{"type": "REQUEST", "methodArn": ..., "headers": ...,
"queryStringParameters": ..., "requestContext": ...}`` and reads back an IAM policy: Allow or
Deny ``execute-api:Invoke`` on the method ARN, a ``principalId`` and a ``context``. A function
*error* whose message is ``Unauthorized`` is a 401; any other error a 500. The event's
requestContext has an eventType and a connectionId, like a ``$connect`` event's: it must be
recognised before the WebSocket events are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Final

from .auth import MAX_AUTHORIZER_RESPONSE_BYTES, AuthorizerSpec, ConnectRequest, Principal, policy
from .events import InvalidEvent, _headers, _mapping, _strings

logger = logging.getLogger("mangum_ws")

# Who a Deny names: API Gateway wants a principal, and a refused caller has none.
ANONYMOUS: Final = "anonymous"


class AuthorizerUnauthorized(Exception):
    """The Lambda error API Gateway turns into 401: its message must be exactly this."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class AuthorizerFailed(Exception):
    """Any other Lambda error: API Gateway answers the upgrade with 500."""


def is_authorizer_event(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and event.get("type") == "REQUEST"
        and isinstance(event.get("methodArn"), str)
    )


def read_request(event: Mapping[str, Any]) -> ConnectRequest:
    context = _mapping(event.get("requestContext"), "requestContext")
    identity = _mapping(context.get("identity"), "requestContext.identity")
    source_ip = identity.get("sourceIp")
    stage = context.get("stage", "")
    if not isinstance(source_ip, str | None) or not isinstance(stage, str):
        raise InvalidEvent("requestContext.identity.sourceIp and stage must be strings")
    return ConnectRequest(
        headers=_headers(event),
        query=_strings(event.get("queryStringParameters"), "queryStringParameters"),
        source_ip=source_ip,
        stage=stage,
        method_arn=event["methodArn"],
        request_context=context,
    )


async def answer(spec: AuthorizerSpec | None, event: Mapping[str, Any]) -> tuple[int, str]:
    """(status, body): 200 with the policy, 401 for Unauthorized, 500 for a failure. The Lambda
    bridge turns a 401 or a 500 into the function error API Gateway expects."""
    if spec is None:
        logger.error("an authorizer event arrived, but no @ws.authorizer is registered")
        return 500, ""
    try:
        request = read_request(event)
    except InvalidEvent as exc:
        logger.warning("refused a malformed authorizer event: %s", exc)
        return 500, ""
    decision = await spec.decide(request)
    if isinstance(decision, Principal):
        body = decision.response("Allow", request.method_arn)
        if len(body) > MAX_AUTHORIZER_RESPONSE_BYTES:  # a method ARN longer than the check's
            logger.error("the authorizer's answer is %d bytes, over 8 KB (500)", len(body))
            return 500, ""
        return 200, body.decode()
    if decision.status_code == 403:
        return 200, json.dumps(policy(ANONYMOUS, "Deny", request.method_arn))
    return decision.status_code, ""


def lambda_result(status: int, body: bytes) -> dict[str, Any]:
    """What the function returns to API Gateway for an authorizer event (or the error it
    raises)."""
    if status == 401:
        raise AuthorizerUnauthorized()
    if status != 200:
        raise AuthorizerFailed(f"the authorizer failed ({status}); see the log above")
    result: dict[str, Any] = json.loads(body)
    return result
