"""The socket endpoint of ``ws.mount``: API Gateway and Lambda in one process, over ASGI.

It plays API Gateway's part (the connection id, the events, the close codes) and hands every
event to the event core, exactly as the Lambda bridge does; it decides nothing itself.
Under ASGI it sees whole messages, never frames: API Gateway's 32 KB frame limit is enforced
by the local API Gateway only (docs/protocol.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import anyio
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket

from .connection import Connection
from .core import Accepted
from .dispatch import call
from .errors import ConnectionGone, Reject
from .events import (
    Peer,
    Stage,
    connect_event,
    disconnect_event,
    message_event,
    new_connection_id,
    read_event,
)
from .gateways.sockets import SocketGateway
from .lifecycle import Refusal
from .limits import Closing, inbound_closing
from .protocol import select_route
from .registry import is_async_callable

if TYPE_CHECKING:
    from .app import MangumWS

logger = logging.getLogger("mangum_ws")

# Like API Gateway's Lambda authorizer: returns the context later events carry, or refuses.
Authorizer = Callable[[Connection], Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None]

# Messages of one connection handled at once; past this, reading from the socket waits.
MAX_IN_FLIGHT = 16
STAGE = "local"


async def _authorize(authorizer: Authorizer, conn: Connection) -> dict[str, Any] | Refusal:
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


def make_socket_endpoint(
    owner: MangumWS, sockets: SocketGateway, authorizer: Authorizer | None
) -> Callable[[WebSocket], Awaitable[None]]:
    core = owner.core
    registry = owner.registry

    def connection(event: dict[str, Any]) -> Connection:
        return core.connection(read_event(event))

    async def endpoint(websocket: WebSocket) -> None:
        scope = websocket.scope
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        host = next((v for k, v in headers if k == "host"), "localhost")
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        peer = Peer(
            connection_id=new_connection_id(),
            source_ip=websocket.client.host if websocket.client else "127.0.0.1",
            user_agent=next((v for k, v in headers if k == "user-agent"), None),
        )
        stage = Stage(STAGE, host)
        if authorizer is not None:
            authorized = await _authorize(
                authorizer, connection(connect_event(peer, stage, headers, query))
            )
            if isinstance(authorized, Refusal):
                await _refuse(websocket, authorized)
                return
            peer.authorizer = authorized
        conn = connection(connect_event(peer, stage, headers, query))
        verdict = await core.connect(conn)
        if not isinstance(verdict, Accepted):
            await _refuse(websocket, verdict)
            return

        connection_id = peer.connection_id
        # asyncio primitives rather than anyio's: these run once per message, and anyio's
        # semaphore and task group each add a trip through the event loop (measured: ~1/3 of
        # the round-trip time of a small action).
        in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()
        # One Connection per route key for the socket's lifetime: built once, not per message.
        by_route: dict[str, Connection] = {}

        async def send(frame: str) -> None:
            await sockets.send_text(connection_id, frame)

        async def handle(text: str) -> None:
            released = False

            def release() -> None:  # once: when the message is done, or becomes a stream
                nonlocal released
                if not released:
                    released = True
                    in_flight.release()

            try:
                route_key = select_route(text, registry.routes)
                caller = by_route.get(route_key)
                if caller is None:
                    caller = by_route[route_key] = connection(
                        message_event(peer, stage, route_key, "")
                    )
                reply = await core.message(caller, text, send, release)
                if reply is not None:
                    await send(reply)
            except ConnectionGone:
                pass  # the socket closed while the action ran; as on AWS, the reply is dropped
            finally:
                release()

        ended = Closing(1006, "")
        try:
            try:
                await websocket.accept(subprotocol=verdict.subprotocol)
            except OSError:  # the client left while $connect ran: it still gets $disconnect
                return
            sockets.register(connection_id, websocket)
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    ended = Closing(
                        int(message.get("code") or 1005), str(message.get("reason") or "")
                    )
                    break
                text = message.get("text")
                closing = inbound_closing(text)
                if closing is not None:
                    ended = closing
                    await sockets.close(connection_id, closing)
                    break
                assert text is not None  # inbound_closing refuses binary messages
                await in_flight.acquire()
                task = asyncio.create_task(handle(text))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            sockets.unregister(connection_id)
            with anyio.CancelScope(shield=True):
                # Like API Gateway, messages already received are still handled: every slot
                # back. Streams gave theirs back and do not hold $disconnect up (on AWS it is
                # an invocation of its own); they end at their next chunk, the socket gone.
                for _ in range(MAX_IN_FLIGHT):
                    await in_flight.acquire()
                farewell = disconnect_event(peer, stage, ended.code, ended.reason, {"Host": host})
                await core.disconnect(connection(farewell))
            await asyncio.gather(*running, return_exceptions=True)

    return endpoint


async def _refuse(websocket: WebSocket, refusal: Refusal) -> None:
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            PlainTextResponse(refusal.message, status_code=refusal.status_code)
        )
    else:  # the server cannot answer the upgrade with a status: ASGI closes with 403
        await websocket.close(code=1008, reason=refusal.message)
