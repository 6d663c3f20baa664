"""The emulated API Gateway: WebSocket upgrades and frames in, Lambda events out, the
@connections management API that the Lambda calls back into over HTTP, and the Lambda Invoke
API for the function behind it (a background action's asynchronous invocation)."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ..auth import FAILED, UNAUTHORIZED, IdentitySource
from ..errors import Reject
from ..events import Stage, connect_event, disconnect_event, message_event
from ..fanout_queue import FanoutQueue
from ..gatekeeper import Upgrade, authorize, read_upgrade, refuse
from ..lifecycle import Refusal
from ..limits import DELETED, IDLE, MAX_MESSAGE_BYTES, TOO_OLD, Closing, inbound_closing
from .connections import ConnectionTable, LiveConnection
from .lambda_runtime import InvocationFailed, LambdaHandlerFn, LambdaRuntime
from .queue_poller import QueuePoller
from .routing import RouteSelector
from .settings import Authorizer, GatewaySettings

logger = logging.getLogger("mangum_ws.local")


def find_mangum_ws(handler: Any) -> Any:
    """The MangumWS behind ``Mangum(app, custom_handlers=[ws.handler])``, or None."""
    for custom in getattr(handler, "custom_handlers", None) or []:
        owner = getattr(custom, "mangum_ws", None)
        if owner is not None:
            return owner
    return None


def _route_responses(handler: Any, setting: bool | None) -> bool:
    """Whether routes are two-way: what the MangumWS says, so the two never disagree."""
    owner = find_mangum_ws(handler)
    if owner is None:
        return bool(setting)
    if setting is not None and setting != owner.route_responses:
        raise ValueError(
            f"route_responses={setting} contradicts MangumWS(route_responses="
            f"{owner.route_responses}) behind the handler: replies would be lost; leave the "
            "setting out and it is read from the MangumWS"
        )
    return bool(owner.route_responses)


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
        owner = find_mangum_ws(handler)
        if keys is None:
            keys = frozenset(owner.registry.routes) if owner is not None else frozenset()
        self.selector = RouteSelector(settings.route_selection, keys)
        self.route_responses = _route_responses(handler, settings.route_responses)
        self.handler = handler
        if self._identity() is not None and settings.authorizer is not None:
            raise ValueError(
                "the handler's MangumWS has an @ws.authorizer: leave out the authorizer= setting"
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
                Route(
                    "/2015-03-31/functions/{function}/invocations", self.invoke, methods=["POST"]
                ),
            ],
        )
        self._async_invocations: set[asyncio.Task[None]] = set()
        # Lambda's SQS event source for the fan-out queue: the whole publish path on one machine.
        queue = (
            FanoutQueue(settings.fanout_queue)
            if settings.fanout_queue
            else getattr(owner, "fanout", None)
        )
        self.queue_poller = (
            QueuePoller(queue, self.runtime.invoke, retry_after=settings.fanout_retry_after)
            if queue
            else None
        )

    # The WebSocket side --------------------------------------------------------------------

    async def _authorize(self, upgrade: Upgrade) -> dict[str, Any] | Refusal | None:
        """The authorizer context, a refusal, or None when the stage has no authorizer."""
        identity = self._identity()
        if identity is not None:  # the MangumWS's @ws.authorizer, as the template deploys it
            return await authorize(self.runtime.invoke, identity, upgrade)
        if self.settings.authorizer is not None:
            return await self._authorize_legacy(
                dict(upgrade.headers), dict(upgrade.query), self.settings.authorizer
            )
        return None

    def _identity(self) -> tuple[IdentitySource, ...] | None:
        """The identity sources of the @ws.authorizer of the MangumWS behind the handler (read
        per upgrade: a handler may be given its app after the emulator starts)."""
        owner = find_mangum_ws(self.handler)
        spec = owner.registry.authorizer if owner is not None else None
        return spec.identity if spec is not None else None

    @staticmethod
    async def _authorize_legacy(
        headers: Mapping[str, str], query: Mapping[str, str], authorizer: Authorizer
    ) -> dict[str, Any] | Refusal:
        """The deprecated ``authorizer=f(headers, query)`` setting."""
        try:
            context = authorizer(headers, query)
            if inspect.isawaitable(context):
                context = await context
        except Reject as exc:
            return Refusal(exc.status_code, exc.message)
        except Exception:
            logger.exception("the authorizer raised")
            return FAILED
        if context is None:
            return UNAUTHORIZED
        return {"principalId": "local", **context}

    async def websocket(self, websocket: WebSocket) -> None:
        upgrade = read_upgrade(websocket, self.settings.stage)
        peer, stage, headers, query = upgrade
        authorized = await self._authorize(upgrade)
        if isinstance(authorized, Refusal):
            await refuse(websocket, authorized)
            return
        peer.authorizer = authorized

        try:
            result = await self.runtime.invoke(connect_event(peer, stage, headers, query))
        except InvocationFailed:
            await refuse(websocket, FAILED)
            return
        status = int(result.get("statusCode", 200))
        if not 200 <= status < 300:
            await refuse(websocket, Refusal(status, str(result.get("body") or "")))
            return
        answer_headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
        live = LiveConnection(peer, websocket)
        ended = Closing(1006, "")
        # MESSAGE invocations still running when the socket ends do not hold $disconnect up (on
        # AWS it is an invocation of its own): the task group waits for them after it.
        async with anyio.create_task_group() as invocations:
            try:
                try:
                    await websocket.accept(subprotocol=answer_headers.get("sec-websocket-protocol"))
                except OSError:  # the client left while $connect ran: it still gets $disconnect
                    return
                self.connections[peer.connection_id] = live
                ended = await self._pump(live, stage, invocations)
            finally:
                # $disconnect follows every $connect that succeeded, whatever ended the socket.
                self.connections.pop(peer.connection_id, None)
                if live.closed_by_server is not None:
                    ended = live.closed_by_server
                event = disconnect_event(
                    peer, stage, ended.code, ended.reason, {"Host": stage.domain_name}
                )
                with anyio.CancelScope(shield=True), contextlib.suppress(InvocationFailed):
                    # A failure is logged by the runtime; $disconnect is best-effort on AWS too.
                    await self.runtime.invoke(event)

    async def _pump(
        self, live: LiveConnection, stage: Stage, invocations: anyio.abc.TaskGroup
    ) -> Closing:
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
                return Closing(int(message.get("code") or 1005), str(message.get("reason") or ""))
            text = message.get("text")
            closing = inbound_closing(text)
            if closing is not None:
                await live.close(*closing)
                return closing
            assert text is not None  # inbound_closing refuses binary messages
            live.touch()
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
        if self.route_responses and result.get("body"):
            await live.send(str(result["body"]))

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

    # The Lambda Invoke API ------------------------------------------------------------------

    async def invoke(self, request: Request) -> Response:
        """Lambda's Invoke for the one function here: ``Event`` answers 202 and runs it in the
        runtime like any invocation, ``RequestResponse`` answers with what it returned."""
        # No signature is checked (any credentials do), but one must be there, as on AWS: a
        # web page cannot send an Authorization header cross-origin without a CORS preflight,
        # which this API never answers, so no page the developer opens can invoke the function.
        if not request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
            return _error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        function = request.path_params["function"]
        if _function_name(function) != self.runtime.function_name:
            return _error(404, "ResourceNotFoundException", f"Function not found: {function[:256]}")
        kind = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if kind not in ("Event", "RequestResponse", "DryRun"):
            return _error(400, "InvalidParameterValueException", f"bad invocation type {kind}")
        body = await request.body()
        limit = MAX_EVENT_PAYLOAD_BYTES if kind == "Event" else MAX_PAYLOAD_BYTES
        if len(body) > limit:
            return _error(413, "RequestEntityTooLargeException", f"payload over {limit} bytes")
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return _error(400, "InvalidRequestContentException", "could not parse the payload")
        if kind == "DryRun":
            return Response(status_code=204)
        if kind == "Event":
            task = asyncio.create_task(self._invoke_async(payload))
            self._async_invocations.add(task)
            task.add_done_callback(self._async_invocations.discard)
            return Response(status_code=202)
        try:
            result = await self.runtime.invoke(payload)
        except InvocationFailed as exc:
            return JSONResponse(
                {"errorMessage": str(exc), "errorType": "Unhandled"},
                headers={"x-amz-function-error": "Unhandled"},
            )
        return JSONResponse(result)

    async def _invoke_async(self, payload: Any) -> None:
        # A failure is logged by the runtime and the event dropped, as Lambda does without
        # retries; a RuntimeError means the emulator is shutting down.
        with contextlib.suppress(InvocationFailed, RuntimeError):
            await self.runtime.invoke(payload)

    def close(self) -> None:
        if self.queue_poller is not None:
            self.queue_poller.stop()
        self.runtime.close()


# Lambda's payload limits: 1 MB for an asynchronous invocation, 6 MB for a synchronous one.
MAX_EVENT_PAYLOAD_BYTES = 1024 * 1024
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def _function_name(function: str) -> str:
    """The name in ``name``, ``arn:aws:lambda:REGION:ACCOUNT:function:name[:qualifier]`` or
    ``ACCOUNT:function:name``."""
    _, found, rest = function.partition("function:")
    return (rest if found else function).split(":")[0]
