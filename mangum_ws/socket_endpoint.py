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

import anyio
from starlette.websockets import WebSocket

from .connection import Connection
from .core import Accepted
from .dispatch import call
from .errors import ConnectionGone, Reject
from .events import connect_event, disconnect_event, message_event, read_event
from .gatekeeper import Invoke, authorize, read_upgrade, refuse
from .gateways.sockets import SocketGateway
from .lambda_authorizer import answer as authorizer_answer
from .lambda_authorizer import lambda_result
from .lifecycle import Refusal
from .limits import Closing, inbound_closing
from .protocol import select_route
from .registry import is_async_callable

if TYPE_CHECKING:
    from .app import MangumWS

logger = logging.getLogger("mangum_ws")

# Deprecated (use @ws.authorizer): returns the context later events carry, or refuses.
Authorizer = Callable[[Connection], Mapping[str, Any] | Awaitable[Mapping[str, Any] | None] | None]

# Messages of one connection handled at once; past this, reading from the socket waits.
MAX_IN_FLIGHT = 16
STAGE = "local"


async def _authorize_legacy(authorizer: Authorizer, conn: Connection) -> dict[str, Any] | Refusal:
    """The deprecated ``ws.mount(..., authorizer=f(conn))`` hook (use ``@ws.authorizer``)."""
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


def in_process(owner: MangumWS) -> Invoke:
    """The authorizer event answered by the same code as on Lambda, without the Lambda."""

    async def invoke(event: dict[str, Any]) -> dict[str, Any]:
        status, body = await authorizer_answer(owner.registry.authorizer, event)
        return lambda_result(status, body.encode())

    return invoke


def make_socket_endpoint(
    owner: MangumWS, sockets: SocketGateway, authorizer: Authorizer | None
) -> Callable[[WebSocket], Awaitable[None]]:
    core = owner.core
    registry = owner.registry

    def connection(event: dict[str, Any]) -> Connection:
        return core.connection(read_event(event))

    invoke = in_process(owner)

    async def endpoint(websocket: WebSocket) -> None:
        upgrade = read_upgrade(websocket, STAGE)
        peer, stage, headers, query = upgrade
        host = stage.domain_name
        authorized: dict[str, Any] | Refusal | None = None
        if registry.authorizer is not None:
            authorized = await authorize(invoke, registry.authorizer.identity, upgrade)
        elif authorizer is not None:
            authorized = await _authorize_legacy(
                authorizer, connection(connect_event(peer, stage, headers, query))
            )
        if isinstance(authorized, Refusal):
            await refuse(websocket, authorized)
            return
        peer.authorizer = authorized
        conn = connection(connect_event(peer, stage, headers, query))
        verdict = await core.connect(conn)
        if not isinstance(verdict, Accepted):
            await refuse(websocket, verdict)
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
