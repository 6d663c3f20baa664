"""The internal routes the Lambda bridge calls, refusing every request that did not come from it.

The endpoints are plain ASGI callables rather than Request/Response functions: every WebSocket
message on Lambda passes through here, and the wrappers cost more than the dispatch itself.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .dispatch import dispatch
from .errors import ConnectionGone
from .gateways.aws import AwsGateway
from .lambda_bridge import INTERNAL_PREFIX, INVOCATION_KEY, Invocation, connection_from_event
from .lifecycle import admit, farewell

if TYPE_CHECKING:
    from .app import MangumWS

logger = logging.getLogger("mangum_ws")

Reply = tuple[int, bytes, list[tuple[bytes, bytes]]]


def subprotocol_header(offered: str | None) -> list[tuple[bytes, bytes]]:
    """Echo the first offered subprotocol: browsers drop an upgrade whose answer names none."""
    if not offered:
        return []
    return [(b"sec-websocket-protocol", offered.split(",")[0].strip().encode())]


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, reply: Reply) -> None:
    status, body, headers = reply
    content_type = [(b"content-type", b"application/json" if body[:1] == b"{" else b"text/plain")]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, *(content_type if body else [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


class InternalEndpoint:
    """One internal route: checks the invocation's proof, then runs ``handle``."""

    def __init__(self, owner: MangumWS, handle: Callable[[Invocation, bytes], Awaitable[Reply]]):
        self.owner = owner
        self.handle = handle
        self.warned = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = scope.get(INVOCATION_KEY)
        if not isinstance(found, Invocation) or found.owner is not self.owner:
            # The answer a missing route gets: nothing here for an HTTP caller to probe.
            await _respond(send, (404, b"Not Found", []))
            return
        gateway = self.owner.gateway
        if isinstance(gateway, AwsGateway):
            gateway.learn_endpoint(found.event["requestContext"])
        elif gateway.is_local and not self.warned:
            self.warned = True
            logger.warning(
                "an API Gateway WebSocket event arrived but MangumWS sends to local sockets, "
                "so every push will report the connection gone: pass endpoint_url= "
                "(e.g. from APIGW_MANAGEMENT_URL) or gateway=AwsGateway()"
            )
        await _respond(send, await self.handle(found, await _read_body(receive)))


def make_internal_router(owner: MangumWS) -> APIRouter:
    async def sendmessage(found: Invocation, body: bytes) -> Reply:
        conn = connection_from_event(found.event, owner)
        reply = await dispatch(owner.registry, body, conn)
        if reply is None:
            return 200, b"", []
        if owner.route_responses:
            return 200, reply.encode(), []
        try:
            await owner.gateway.post(conn.connection_id, reply.encode())
        except ConnectionGone:
            logger.info("reply dropped: connection %s is gone", conn.connection_id)
        except Exception as exc:  # one line per lost reply, not a traceback per message
            logger.error("reply to connection %s not posted: %r", conn.connection_id, exc)
        return 200, b"", []

    async def connect(found: Invocation, body: bytes) -> Reply:
        conn = connection_from_event(found.event, owner)
        refusal = await admit(owner.registry, conn, owner.store)
        if refusal is not None:
            return refusal.status_code, refusal.message.encode(), []
        return 200, b"", subprotocol_header(conn.headers.get("sec-websocket-protocol"))

    async def disconnect(found: Invocation, body: bytes) -> Reply:
        await farewell(owner.registry, connection_from_event(found.event, owner), owner.store)
        return 200, b"", []

    router = APIRouter()
    # sendmessage first: it is by far the most frequent, and routes are matched in order.
    for name, handle in (
        ("sendmessage", sendmessage),
        ("connect", connect),
        ("disconnect", disconnect),
    ):
        router.routes.append(
            Route(
                f"{INTERNAL_PREFIX}/{name}/{{connection_id:path}}",
                InternalEndpoint(owner, handle),
                methods=["POST"],
                include_in_schema=False,
            )
        )
    return router
