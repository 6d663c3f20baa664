"""MangumWS: the registry, the routes into it and the sends out of it, in one object."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, TypeVar, overload

from fastapi import APIRouter, FastAPI
from mangum.types import LambdaHandler

from .core import EventCore
from .errors import (
    ConnectionGone,
    ConnectionNotReady,
    MangumWSError,
    PayloadTooLarge,
    RegistrationError,
    SendError,
)
from .fanout_queue import DEFAULT_THRESHOLD, FanoutQueue
from .gateways import AwsGateway, Gateway, SocketGateway
from .internal_routes import make_internal_router
from .lambda_bridge import make_lambda_handler
from .lifecycle import connecting_id, forget
from .limits import MAX_MESSAGE_BYTES
from .protocol import encode_payload, event_frame, topic_event_frame
from .registry import ActionSpec, EventSpec, Hook, Registry, is_async_callable
from .sending import SendReport, fan_out, for_each
from .sessions import DEFAULT_SESSION_TTL
from .socket_endpoint import Authorizer, make_socket_endpoint
from .store import ConnectionRecord, ConnectionStore, InMemoryStore

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M")

DEFAULT_TOPIC_HISTORY = 1000


class MangumWS:
    """WebSocket RPC for a FastAPI app on API Gateway + Lambda, and locally.

    ``MangumWS(endpoint_url=url)`` sends through API Gateway's management API at ``url``
    (botocore, the ``[aws]`` extra); without a URL it sends to sockets opened through
    :meth:`mount`. Pass ``gateway=`` for any other transport, e.g. ``AwsGateway()`` to post
    back to whichever API sent the event.

    ``session_ttl`` (seconds, default 15 minutes) is how long a session outlives its
    connection for a client's ``$hello`` to resume it, and how long each topic's last
    ``topic_history`` events (default 1,000 per topic; 0: no seq, nothing kept) are kept to
    replay what a resuming session missed.

    ``route_responses=True`` returns each reply as the Lambda's response body, for routes
    configured as two-way in API Gateway (no extra API call); otherwise replies are posted
    with ``post_to_connection``. Locally, replies always go straight down the socket.

    ``fanout_queue=URL`` (an SQS queue; the SAM template makes one with ``--fanout-queue``)
    spreads a publish to more than ``fanout_threshold`` subscribers over Lambda invocations:
    batches of ids go through the queue, and ``ws.handler`` posts them when the function
    consumes it (fanout_queue.py). Without a queue, or with ``ws.mount``'s local sockets,
    every publish is posted by the process that makes it.
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        gateway: Gateway | None = None,
        route_responses: bool = False,
        max_concurrency: int = 32,
        store: ConnectionStore | None = None,
        fanout_queue: str | None = None,
        fanout_threshold: int = DEFAULT_THRESHOLD,
        session_ttl: float = DEFAULT_SESSION_TTL,
        topic_history: int = DEFAULT_TOPIC_HISTORY,
    ) -> None:
        if gateway is not None and endpoint_url is not None:
            raise ValueError("pass endpoint_url or gateway, not both")
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if session_ttl <= 0:
            raise ValueError("session_ttl must be positive (seconds)")
        if topic_history < 0:
            raise ValueError("topic_history must be 0 (off) or more")
        if gateway is None:
            gateway = (
                AwsGateway(endpoint_url, max_concurrency=max_concurrency)
                if endpoint_url
                else SocketGateway()
            )
        self.gateway: Gateway = gateway
        self.route_responses = route_responses
        self.max_concurrency = max_concurrency
        self.store: ConnectionStore = store if store is not None else InMemoryStore()
        self.fanout: FanoutQueue | None = (
            FanoutQueue(fanout_queue, threshold=fanout_threshold) if fanout_queue else None
        )
        self.session_ttl = session_ttl
        self.topic_history = topic_history
        self.registry = Registry()
        self.core = EventCore(self)
        self.handler: type[LambdaHandler] = make_lambda_handler(self)

    @property
    def is_local(self) -> bool:
        """True when sends go to sockets this process holds (``ws.mount``), not to AWS."""
        return self.gateway.sockets is not None

    # Lifecycle hooks (the seed API) -------------------------------------------------------

    def on_connect(self, func: F) -> F:
        """``async def f(connection_id: str)`` or ``f(conn: Connection)``; may raise ``Reject``."""
        self.registry.on_connect = Hook.read(func, "on_connect", 1)
        return func

    def on_disconnect(self, func: F) -> F:
        self.registry.on_disconnect = Hook.read(func, "on_disconnect", 1)
        return func

    def on_message(self, func: F) -> F:
        """``async def f(connection_id: str, data: dict)``: messages no action claims."""
        self.registry.on_message = Hook.read(func, "on_message", 2)
        return func

    def authorizer(self, *, identity: Iterable[str] = (), ttl: float = 0) -> Callable[[F], F]:
        """Register the connection's authorizer: ``f(request: ConnectRequest) -> Principal``.

        It runs once, before ``$connect``: on AWS as the API's Lambda REQUEST authorizer (the
        deploy template adds it, served by this same function), locally before ``ws.mount``'s
        and the local API Gateway's ``$connect``. ``identity`` names where the credentials are,
        ``"query:token"`` or ``"header:authorization"``: when one is missing or empty the
        upgrade is refused with 401 and ``f`` is not called, as on AWS. ``f`` raises
        ``Reject(401)`` or ``Reject(403)`` to refuse; any other exception refuses with 500.
        ``ttl`` (seconds, up to 3600) caches each answer by the identity values in this
        process (API Gateway's WebSocket authorizers cache nothing).
        """
        from .auth import AuthorizerSpec

        def register(func: F) -> F:
            if self.registry.authorizer is not None:
                raise RegistrationError("an app has one authorizer; it is registered twice")
            self.registry.authorizer = AuthorizerSpec(func, identity, ttl, is_async_callable(func))
            return func

        return register

    # Typed actions and events -------------------------------------------------------------

    def action(
        self,
        name: str,
        *,
        route: str | None = None,
        input: Any = None,
        output: Any = None,
        background: bool = False,
        dependencies: Sequence[Any] = (),
    ) -> Callable[[F], F]:
        """Register a typed action; input and output are read from the annotations.

        Parameters may be FastAPI ``Depends(f)`` (or ``Annotated[T, Depends(f)]``): ``f``
        takes the ``Connection`` and other dependencies, and runs per call as FastAPI runs it
        (cached per call, ``yield`` cleaned up after the action). ``dependencies=[Depends(g)]``
        runs guards whose values the action does not need; a guard refuses by raising
        ``Forbidden`` / ``Unauthorized`` (or any ``ActionError``, or FastAPI's
        ``HTTPException(403)`` / ``(401)``).

        ``background=True`` answers the message at once and runs the action past it: on Lambda
        in an asynchronous invocation of the same function (up to the function's own timeout,
        not API Gateway's 29 s), locally as a task; its frames are sent to the connection.
        """

        def register(func: F) -> F:
            spec = ActionSpec.read(
                name,
                func,
                route=route,
                input=input,
                output=output,
                background=background,
                dependencies=dependencies,
            )
            self.registry.add_action(spec)
            return func

        return register

    @overload
    def event(self, name: str, model: type[M]) -> EventSpec[M]: ...
    @overload
    def event(self, name: str, model: Any) -> EventSpec[Any]: ...

    def event(self, name: str, model: Any) -> EventSpec[Any]:
        """Register a typed server push; returns a handle whose ``emit`` sends it."""
        from pydantic import TypeAdapter

        spec: EventSpec[Any] = EventSpec(name, model, TypeAdapter(model), self)
        self.registry.add_event(spec)
        return spec

    # Routes into the registry -------------------------------------------------------------

    @functools.cached_property
    def router(self) -> APIRouter:
        """The internal routes the Lambda bridge calls: ``app.include_router(ws.router)``."""
        return make_internal_router(self)

    def mount(self, app: FastAPI, path: str = "/", *, authorizer: Authorizer | None = None) -> None:
        """Serve the handlers on a real WebSocket at ``path``; a no-op when sending through AWS.

        The ``@ws.authorizer`` runs before ``$connect``, as API Gateway runs it. ``authorizer=``
        (``f(conn)`` returning the context, ``None`` for 401, or raising ``Reject``) is
        deprecated: it goes in the next release.
        """
        if authorizer is not None:
            if self.registry.authorizer is not None:
                raise ValueError("pass authorizer= or register @ws.authorizer, not both")
            warnings.warn(
                "ws.mount(..., authorizer=f(conn)) is deprecated: declare the authorizer once "
                "with @ws.authorizer(identity=[...]), which runs on AWS too",
                DeprecationWarning,
                stacklevel=2,
            )
        sockets = self.gateway.sockets
        if sockets is None:
            return
        app.router.add_websocket_route(path, make_socket_endpoint(self, sockets, authorizer))

    # Sending ------------------------------------------------------------------------------

    async def send(self, connection_ids: Iterable[str], data: Any) -> set[str]:
        """Send ``data`` to every id; return the ids that are gone.

        Every id is attempted, at most ``max_concurrency`` at a time. Ids that failed for
        another reason (throttled past the retries, 403, a timeout) are never reported as gone:
        they raise :class:`SendError` after the batch, with ``.failed`` and ``.gone``.
        """
        report = await self.deliver(connection_ids, data)
        if report.failed:
            raise SendError(report.failed, report.gone)
        return report.gone

    async def deliver(self, connection_ids: Iterable[str], data: Any) -> SendReport:
        """Like :meth:`send`, but never raises for a failed id: returns where each id ended."""
        payload = encode_payload(data)
        if len(payload) > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(len(payload), MAX_MESSAGE_BYTES)
        ids = list(dict.fromkeys(connection_ids))
        connecting = connecting_id.get()
        if connecting is not None and connecting in ids:
            raise ConnectionNotReady(connecting)
        if self.fanout is not None and not self.is_local and self.fanout.wants(len(ids)):
            endpoint = getattr(self.gateway, "endpoint_url", None)
            return await self.fanout.enqueue(ids, payload.decode(), endpoint)
        return await fan_out(self.gateway, ids, payload, min(self.max_concurrency, len(ids)))

    async def send_to_connection(self, connection_id: str, data: Any) -> bool:
        """Send to one connection: True when delivered, False when it is gone; raises otherwise."""
        if connecting_id.get() == connection_id:
            raise ConnectionNotReady(connection_id)
        payload = encode_payload(data)
        if len(payload) > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(len(payload), MAX_MESSAGE_BYTES)
        try:
            await self.gateway.post(connection_id, payload)
        except ConnectionGone:
            return False
        return True

    async def emit(self, event: str, data: Any, *, connection_ids: Iterable[str]) -> set[str]:
        """Push a registered event (validated against its model); return the gone ids."""
        spec = self._event(event)
        return await self.send(
            connection_ids, event_frame(event, spec.adapter.validate_python(data))
        )

    def _event(self, event: str) -> EventSpec[Any]:
        spec = self.registry.events.get(event)
        if spec is None:
            raise MangumWSError(
                f"event {event!r} is not registered; use ws.event({event!r}, Model)"
            )
        return spec

    # Connections and topics (kept in ``store``) ---------------------------------------------

    async def connection(self, connection_id: str) -> ConnectionRecord | None:
        """What was kept of a connection at $connect (query, authorizer, source IP), and the
        state the application set since."""
        return await self.store.get(connection_id)

    async def set_state(self, connection_id: str, state: Mapping[str, Any]) -> None:
        """Keep ``state`` (a JSON object, replacing the previous one) with the connection, for
        later invocations to read as ``(await ws.connection(id)).state``: on Lambda, where
        invocations share no memory, this is where a nickname or a logged-in user belongs.

        Raises ConnectionGone when the store does not know the connection (it was removed, or
        its $connect never reached the store), TypeError when ``state`` is not JSON.
        """
        if not await self.store.set_state(connection_id, state):
            raise ConnectionGone(connection_id)

    async def subscribe(self, connection_id: str, topic: str) -> None:
        await self.store.subscribe(connection_id, topic)

    async def unsubscribe(self, connection_id: str, topic: str) -> None:
        await self.store.unsubscribe(connection_id, topic)

    async def publish(self, topic: str, event: str, data: Any) -> SendReport:
        """Push a registered event to every subscriber of ``topic``.

        Gone subscribers are removed from the store on the spot, ``max_concurrency`` at a time
        (a removal that fails is logged, not raised: the report still comes back, and the
        items expire by TTL); failed ones are kept (they may be alive) and listed in the report.
        With a fan-out queue and more than ``fanout_threshold`` subscribers, the ids come back
        as ``queued``: the queue's consumers post to them and remove the gone ones.
        """
        spec = self._event(event)
        value = spec.adapter.validate_python(data)
        if self.topic_history:
            frame = await self._numbered(topic, event, value)
        else:
            frame = event_frame(event, value)
        # Subscribers are read after the event is kept: a session that resumes meanwhile
        # either is among them or finds the event to replay (docs/protocol.md, "Sessions").
        report = await self.deliver(await self.store.subscribers(topic), frame)
        await self.forget_gone(report.gone)
        return report

    async def forget_gone(self, connection_ids: Collection[str]) -> None:
        """Remove connections a send found gone, ``max_concurrency`` at a time, parking their
        sessions for a resume (a removal that fails is logged, never raised)."""
        forget_one = functools.partial(forget, self.store, session_ttl=self.session_ttl)
        await for_each(connection_ids, forget_one, self.max_concurrency)

    async def _numbered(self, topic: str, event: str, value: Any) -> str:
        """The event's frame with the topic's next seq, kept for replays."""

        def frame_for(seq: int) -> str:
            return topic_event_frame(event, topic, seq, value)

        size = len(frame_for(10**20).encode())  # refused before it takes a seq
        if size > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(size, MAX_MESSAGE_BYTES)
        return await self.store.append_event(topic, frame_for, self.topic_history, self.session_ttl)

    @functools.cached_property
    def schema_hash(self) -> str:
        """The hash codegen writes into generated clients, which ``$hello`` compares."""
        from .codegen.schema import build_schema, schema_hash

        return schema_hash(build_schema(self, "app"))

    async def disconnect(self, connection_id: str) -> None:
        """Close a connection from the server side (DELETE @connections/{id} on AWS)."""
        await self.gateway.delete(connection_id)
