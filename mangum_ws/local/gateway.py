"""The emulated API Gateway: WebSocket upgrades and frames in, Lambda events out, and the
@connections management API that the Lambda calls back into over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ..errors import Reject
from ..gateways.local import new_connection_id
from .connections import ConnectionTable, LiveConnection
from .events import Peer, Stage, connect_event, disconnect_event, message_event
from .lambda_runtime import InvocationFailed, LambdaHandlerFn, LambdaRuntime
from .routing import RouteSelector
from .settings import MAX_MESSAGE_BYTES, GatewaySettings

logger = logging.getLogger("mangum_ws.local")

# What API Gateway reports in disconnectStatusCode / disconnectReason when it closes a socket.
DELETED = (1000, "Connection Closed Normally")
IDLE = (1001, "Going away")
TOO_OLD = (1001, "Going away")
BINARY = (1003, "Binary frames are not supported")


def discover_route_keys(handler: Any) -> frozenset[str]:
    """The custom route keys of the MangumWS behind ``Mangum(app, custom_handlers=[...])``."""
    for custom in getattr(handler, "custom_handlers", None) or []:
        owner = getattr(custom, "mangum_ws", None)
        if owner is not None:
            return frozenset(owner.registry.routes)
    return frozenset()


def _error(status: int, error_type: str, message: str) -> Response:
    return JSONResponse(
        {"message": message}, status_code=status, headers={"x-amzn-ErrorType": error_type}
    )


class LocalApiGatewayApp:
    """A Starlette app emulating one WebSocket API stage in front of one Lambda handler."""

    def __init__(self, handler: LambdaHandlerFn, settings: GatewaySettings) -> None:
        self.settings = settings
        self.runtime = LambdaRuntime(
            handler,
            concurrency=settings.concurrency,
            timeout_seconds=settings.function_timeout,
        )
        keys = settings.route_keys
        self.selector = RouteSelector(
            settings.route_selection, discover_route_keys(handler) if keys is None else keys
        )
        self.connections = ConnectionTable()
        stage = settings.stage
        self.app = Starlette(
            routes=[
                WebSocketRoute("/", self.websocket),
                WebSocketRoute(f"/{stage}", self.websocket),
                *(
                    Route(path, self.management, methods=["GET", "POST", "DELETE"])
                    for path in (
                        "/@connections/{connection_id}",
                        f"/{stage}/@connections/{{connection_id}}",
                    )
                ),
            ],
        )

    # The WebSocket side --------------------------------------------------------------------

    async def _authorize(
        self, headers: Mapping[str, str], query: Mapping[str, str]
    ) -> dict[str, Any] | tuple[int, str]:
        authorizer = self.settings.authorizer
        if authorizer is None:
            return {}
        try:
            context = authorizer(headers, query)
            if inspect.isawaitable(context):
                context = await context
        except Reject as exc:
            return exc.status_code, exc.message
        except Exception:
            logger.exception("the authorizer raised")
            return 500, "Internal Server Error"
        if context is None:
            return 401, "Unauthorized"
        return {"principalId": "local", **context}

    async def websocket(self, websocket: WebSocket) -> None:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in websocket.scope["headers"]
        ]
        header_map = dict(headers)
        query = parse_qsl(websocket.scope.get("query_string", b"").decode(), keep_blank_values=True)
        client = websocket.client
        peer = Peer(
            connection_id=new_connection_id(),
            source_ip=client.host if client else "127.0.0.1",
            user_agent=header_map.get("user-agent"),
        )
        stage = Stage(self.settings.stage, header_map.get("host", "localhost"))
        authorized = await self._authorize(header_map, dict(query))
        if isinstance(authorized, tuple):
            await self._refuse(websocket, *authorized)
            return
        if self.settings.authorizer is not None:
            peer.authorizer = authorized

        try:
            result = await self.runtime.invoke(connect_event(peer, stage, headers, query))
        except InvocationFailed:
            await self._refuse(websocket, 500, "Internal Server Error")
            return
        status = int(result.get("statusCode", 200))
        if not 200 <= status < 300:
            await self._refuse(websocket, status, str(result.get("body") or ""))
            return
        answer_headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        await websocket.accept(subprotocol=answer_headers.get("sec-websocket-protocol"))
        live = LiveConnection(peer, websocket)
        self.connections[peer.connection_id] = live
        try:
            async with anyio.create_task_group() as invocations:
                code, reason = await self._pump(live, stage, invocations)
        finally:
            self.connections.pop(peer.connection_id, None)
        if live.closed_by_server is not None:
            code, reason = live.closed_by_server
        event = disconnect_event(peer, stage, code, reason, {"Host": stage.domain_name})
        # A failure is logged by the runtime; $disconnect is best-effort on AWS too.
        with contextlib.suppress(InvocationFailed):
            await self.runtime.invoke(event)

    async def _pump(
        self, live: LiveConnection, stage: Stage, invocations: anyio.abc.TaskGroup
    ) -> tuple[int, str]:
        """Read frames until the socket closes; return the close code and reason."""
        opened = time.monotonic()
        websocket = live.websocket
        while True:
            idle_left = self.settings.idle_timeout - (time.monotonic() - live.last_active_monotonic)
            age_left = self.settings.max_connection_age - (time.monotonic() - opened)
            try:
                message = await asyncio.wait_for(
                    websocket.receive(), timeout=max(0.0, min(idle_left, age_left))
                )
            except TimeoutError:
                await live.close(*(TOO_OLD if age_left <= idle_left else IDLE))
                return live.closed_by_server or IDLE
            if message["type"] == "websocket.disconnect":
                return int(message.get("code") or 1005), str(message.get("reason") or "")
            if message.get("text") is None:
                await live.close(*BINARY)
                return BINARY
            live.touch()
            text: str = message["text"]
            route_key = self.selector.select(text)
            event = message_event(live.peer, stage, route_key, text)
            invocations.start_soon(self._deliver, live, event)

    async def _deliver(self, live: LiveConnection, event: dict[str, Any]) -> None:
        try:
            result = await self.runtime.invoke(event)
        except InvocationFailed:
            await live.send(
                json.dumps(
                    {
                        "message": "Internal server error",
                        "connectionId": live.peer.connection_id,
                        "requestId": event["requestContext"]["requestId"],
                    }
                )
            )
            return
        if self.settings.route_responses and result.get("body"):
            await live.send(str(result["body"]))

    async def _refuse(self, websocket: WebSocket, status: int, message: str) -> None:
        await websocket.send_denial_response(
            PlainTextResponse(message or "Forbidden", status_code=status)
        )

    # The management API --------------------------------------------------------------------

    async def management(self, request: Request) -> Response:
        connection_id = request.path_params["connection_id"]
        live = self.connections.get(connection_id)
        if request.method == "POST":
            data = await request.body()
            if len(data) > MAX_MESSAGE_BYTES:
                return _error(413, "PayloadTooLargeException", "Message too long")
            if live is None or not await live.send(data.decode("utf-8", errors="replace")):
                return _error(410, "GoneException", "Connection is gone")
            return Response(status_code=200)
        if live is None:
            return _error(410, "GoneException", "Connection is gone")
        if request.method == "GET":
            return JSONResponse(live.description())
        await live.close(*DELETED)
        return Response(status_code=204)

    def close(self) -> None:
        self.runtime.close()
