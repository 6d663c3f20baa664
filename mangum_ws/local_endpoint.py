"""``ws.mount``: a real WebSocket endpoint that runs the same handlers as Lambda, in-process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket

from .connection import Connection
from .dispatch import call, dispatch
from .errors import ConnectionGone, Reject
from .gateways.local import LocalGateway, new_connection_id
from .lifecycle import Refusal, admit, farewell
from .protocol import ErrorCode, error_frame, select_route
from .registry import is_async_callable

if TYPE_CHECKING:
    from .app import MangumWS

logger = logging.getLogger("mangum_ws")

# Like API Gateway's Lambda authorizer: returns the context later events carry, or refuses.
Authorizer = Callable[[Connection], Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None]

# Messages of one connection handled at once; past this, reading from the socket waits.
MAX_IN_FLIGHT = 16
BINARY_REFUSED = "binary frames are not supported; send JSON text"


async def _authorize(
    authorizer: Authorizer | None, conn: Connection
) -> Mapping[str, Any] | Refusal:
    if authorizer is None:
        return {}
    try:
        context = await call(authorizer, is_async_callable(authorizer), conn)
    except Reject as exc:
        return Refusal(exc.status_code, exc.message)
    except Exception:
        logger.exception("authorizer failed for connection %s", conn.connection_id)
        return Refusal(500, "Internal Server Error")
    if context is None:
        return Refusal(401, "Unauthorized")
    return dict(context)


def _request_context(
    connection_id: str, route_key: str, event_type: str, source_ip: str | None
) -> dict[str, Any]:
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "connectionId": connection_id,
        "requestTimeEpoch": int(time.time() * 1000),
        "identity": {"sourceIp": source_ip},
        "stage": "local",
    }


def make_local_endpoint(
    owner: MangumWS, gateway: LocalGateway, authorizer: Authorizer | None
) -> Callable[[WebSocket], Awaitable[None]]:
    registry = owner.registry

    async def endpoint(websocket: WebSocket) -> None:
        connection_id = new_connection_id()
        source_ip = websocket.client.host if websocket.client else None
        conn = Connection(
            connection_id=connection_id,
            sender=owner,
            route_key="$connect",
            query=dict(websocket.query_params),
            headers=dict(websocket.headers),
            source_ip=source_ip,
            request_context=_request_context(connection_id, "$connect", "CONNECT", source_ip),
        )
        authorized = await _authorize(authorizer, conn)
        if isinstance(authorized, Refusal):
            await _refuse(websocket, authorized)
            return
        conn = replace(conn, authorizer=authorized)
        refusal = await admit(registry, conn, owner.store)
        if refusal is not None:
            await _refuse(websocket, refusal)
            return

        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=offered[0] if offered else None)
        gateway.register(connection_id, websocket)
        # asyncio primitives rather than anyio's: these run once per message, and anyio's
        # semaphore and task group each add a trip through the event loop (measured: ~1/3 of
        # the round-trip time of a small action).
        in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()
        # One Connection per route key for the socket's lifetime: built once, not per message.
        by_route: dict[str, Connection] = {}

        async def handle(body: str) -> None:
            try:
                route_key = select_route(body, registry.routes)
                caller = by_route.get(route_key)
                if caller is None:
                    caller = by_route[route_key] = _message_conn(conn, route_key)
                reply = await dispatch(registry, body, caller)
                if reply is not None:
                    await gateway.send_text(connection_id, reply)
            except ConnectionGone:
                pass
            finally:
                in_flight.release()

        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    text = error_frame(ErrorCode.BAD_REQUEST, BINARY_REFUSED)
                    await _post_quietly(gateway, connection_id, text)
                    continue
                await in_flight.acquire()
                task = asyncio.create_task(handle(text))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            gateway.unregister(connection_id)
            with anyio.CancelScope(shield=True):
                # Like API Gateway, messages already received are still handled.
                await asyncio.gather(*running, return_exceptions=True)
                await farewell(registry, _message_conn(conn, "$disconnect"), owner.store)

    return endpoint


async def _post_quietly(gateway: LocalGateway, connection_id: str, frame: str) -> None:
    with contextlib.suppress(ConnectionGone):
        await gateway.send_text(connection_id, frame)


def _message_conn(conn: Connection, route_key: str) -> Connection:
    """What a later event of the connection carries: like API Gateway, no query or headers."""
    event_type = "DISCONNECT" if route_key == "$disconnect" else "MESSAGE"
    return replace(
        conn,
        route_key=route_key,
        query={},
        headers={},
        request_context=_request_context(conn.connection_id, route_key, event_type, conn.source_ip),
    )


async def _refuse(websocket: WebSocket, refusal: Refusal) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            PlainTextResponse(refusal.message, status_code=refusal.status_code)
        )
    else:  # the server cannot answer the upgrade with a status: ASGI closes with 403
        await websocket.close(code=1008, reason=refusal.message)
