"""The internal routes the Lambda bridge calls, refusing every request that did not come from it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from .dispatch import dispatch
from .errors import ConnectionGone
from .gateways.aws import AwsGateway
from .lambda_bridge import INTERNAL_PREFIX, INVOCATION_KEY, Invocation, connection_from_event
from .lifecycle import admit, farewell

if TYPE_CHECKING:
    from .app import MangumWS

logger = logging.getLogger("mangum_ws")


def _not_found() -> Response:
    # The same answer as a route that does not exist: nothing here for an HTTP caller to probe.
    return PlainTextResponse("Not Found", status_code=404)


def subprotocol_header(offered: str | None) -> dict[str, str]:
    """Echo the first offered subprotocol: browsers drop an upgrade whose answer names none."""
    if not offered:
        return {}
    return {"Sec-WebSocket-Protocol": offered.split(",")[0].strip()}


def make_internal_router(owner: MangumWS) -> APIRouter:
    router = APIRouter()

    def invocation(request: Request) -> Invocation | None:
        found = request.scope.get(INVOCATION_KEY)
        if isinstance(found, Invocation) and found.owner is owner:
            return found
        return None

    async def connect(request: Request) -> Response:
        found = invocation(request)
        if found is None:
            return _not_found()
        if isinstance(owner.gateway, AwsGateway):
            owner.gateway.learn_endpoint(found.event["requestContext"])
        conn = connection_from_event(found.event, owner)
        refusal = await admit(owner.registry, conn)
        if refusal is not None:
            return PlainTextResponse(refusal.message, status_code=refusal.status_code)
        return Response(
            status_code=200,
            headers=subprotocol_header(conn.headers.get("sec-websocket-protocol")),
        )

    async def disconnect(request: Request) -> Response:
        found = invocation(request)
        if found is None:
            return _not_found()
        await farewell(owner.registry, connection_from_event(found.event, owner))
        return Response(status_code=200)

    async def sendmessage(request: Request) -> Response:
        found = invocation(request)
        if found is None:
            return _not_found()
        if isinstance(owner.gateway, AwsGateway):
            owner.gateway.learn_endpoint(found.event["requestContext"])
        conn = connection_from_event(found.event, owner)
        reply = await dispatch(owner.registry, await request.body(), conn)
        if reply is None:
            return Response(status_code=200)
        if owner.route_responses:
            return Response(reply, status_code=200, media_type="application/json")
        try:
            await owner.gateway.post(conn.connection_id, reply.encode())
        except ConnectionGone:
            logger.info("reply dropped: connection %s is gone", conn.connection_id)
        return Response(status_code=200)

    for name, endpoint in (
        ("connect", connect),
        ("disconnect", disconnect),
        ("sendmessage", sendmessage),
    ):
        router.add_route(
            f"{INTERNAL_PREFIX}/{name}/{{connection_id:path}}",
            endpoint,
            methods=["POST"],
            include_in_schema=False,
        )
    return router
