"""API Gateway's door, where mangum-ws plays API Gateway over a socket (``ws.mount``'s endpoint
and the local API Gateway): the upgrade request read into a Peer and a Stage, the Lambda
REQUEST authorizer run before ``$connect``, and the refusal of an upgrade.

Both run the authorizer the same way, as API Gateway does: a missing identity source is a
401 without a call; otherwise the authorizer event goes to the function (the Lambda runtime's
invocation, or the same code in-process) and its policy is read: Allow on the method ARN
admits, with the context every later event carries; Deny is a 403; the error
``Unauthorized`` a 401; any other error, or an answer API Gateway would not accept, a 500.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket

from .auth import FAILED, FORBIDDEN, UNAUTHORIZED, IdentitySource, Principal, identity_values
from .errors import InvalidPrincipal
from .events import Peer, Stage, connect_event, new_connection_id
from .lifecycle import Refusal

logger = logging.getLogger("mangum_ws")

# The account in the ARNs the emulator makes up (Lambda's runtime context uses the same one).
ACCOUNT = "123456789012"

# An authorizer event in, its result out; raises what the function raised.
Invoke = Callable[[dict[str, Any]], Awaitable[Any]]


class Upgrade(NamedTuple):
    """What API Gateway reads of an upgrade request."""

    peer: Peer
    stage: Stage
    headers: list[tuple[str, str]]
    query: list[tuple[str, str]]


def read_upgrade(websocket: WebSocket, stage_name: str) -> Upgrade:
    scope = websocket.scope
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    lower = {name.lower(): value for name, value in headers}
    peer = Peer(
        connection_id=new_connection_id(),
        source_ip=websocket.client.host if websocket.client else "127.0.0.1",
        user_agent=lower.get("user-agent"),
    )
    return Upgrade(peer, Stage(stage_name, lower.get("host", "localhost")), headers, query)


def method_arn(stage: Stage) -> str:
    region = os.environ.get("AWS_REGION", "us-east-1")
    return f"arn:aws:execute-api:{region}:{ACCOUNT}:{stage.api_id}/{stage.name}/$connect"


def authorizer_event(upgrade: Upgrade) -> dict[str, Any]:
    """The REQUEST authorizer event API Gateway sends for this upgrade (the docs' shape)."""
    event = connect_event(upgrade.peer, upgrade.stage, upgrade.headers, upgrade.query)
    del event["isBase64Encoded"]
    return {
        "type": "REQUEST",
        "methodArn": method_arn(upgrade.stage),
        **event,
        "stageVariables": {},
    }


async def authorize(
    invoke: Invoke, identity: Sequence[IdentitySource], upgrade: Upgrade
) -> dict[str, Any] | Refusal:
    """The authorizer context for ``peer.authorizer``, or the refusal of the upgrade."""
    headers = {name.lower(): value for name, value in upgrade.headers}
    if identity_values(identity, headers, dict(upgrade.query)) is None:
        return UNAUTHORIZED
    event = authorizer_event(upgrade)
    started = time.monotonic()
    try:
        result = await invoke(event)
    except Exception as exc:
        if str(exc) == "Unauthorized":
            return UNAUTHORIZED
        logger.error("the authorizer failed: %s", exc)
        return FAILED
    return read_policy(result, event["methodArn"], int((time.monotonic() - started) * 1000))


def read_policy(result: Any, arn: str, latency_ms: int = 0) -> dict[str, Any] | Refusal:
    """API Gateway's reading of an authorizer's answer."""
    try:
        if not isinstance(result, dict):
            raise InvalidPrincipal(f"the answer is a {type(result).__name__}, not an object")
        document = result.get("policyDocument")
        statements = document.get("Statement") if isinstance(document, dict) else None
        if isinstance(statements, dict):
            statements = [statements]
        if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
            raise InvalidPrincipal("policyDocument.Statement must be a list of statements")
        principal = Principal(result.get("principalId"), result.get("context") or {})  # type: ignore[arg-type]
    except InvalidPrincipal as exc:
        logger.error("the authorizer's answer is not one API Gateway accepts (500): %s", exc)
        return FAILED
    effects = {s.get("Effect") for s in statements if _applies(s, arn)}
    if "Deny" in effects or "Allow" not in effects:  # an explicit Deny wins, as in IAM
        return FORBIDDEN
    return {**principal.authorizer, "integrationLatency": latency_ms}


def _applies(statement: dict[str, Any], arn: str) -> bool:
    return any(_matches(p, "execute-api:Invoke") for p in _listed(statement.get("Action"))) and any(
        _matches(p, arn) for p in _listed(statement.get("Resource"))
    )


def _listed(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, str)]


def _matches(pattern: str, value: str) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` any one; nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


async def refuse(websocket: WebSocket, refusal: Refusal) -> None:
    """Answer the upgrade with the refusal's status, as API Gateway does."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            PlainTextResponse(refusal.message or "Forbidden", status_code=refusal.status_code)
        )
    else:  # the server cannot answer the upgrade with a status: ASGI closes with 403
        await websocket.close(code=1008, reason=refusal.message)
