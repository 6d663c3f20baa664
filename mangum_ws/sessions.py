"""Sessions that survive reconnects: the ``$hello`` handshake.

API Gateway gives every reconnect a new connection id. A generated client's first message on
every connection is ``$hello``; the session token it carries moves the session's topic
subscriptions and state (``ws.set_state``) from the old connection id to the new one, and the
events of those topics published in between are sent again (from the store's kept events,
numbered per topic) before the handshake's result. Clients drop any seq they have already
seen, so the app sees each event once and in order.

The move subscribes the new id before unsubscribing the old one: a publish during the move
reaches the session at least once (the client drops a second copy by its seq), never zero
times. A connection that is still open loses the session's subscriptions and state.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

from .connection import Connection
from .errors import ConnectionGone
from .limits import MAX_CONNECTION_AGE, MAX_ERROR_DETAILS, MAX_ID_CHARS, MAX_NAME_CHARS
from .protocol import HELLO, ErrorCode, error_frame, result_frame
from .store import ConnectionStore, SessionRecord
from .streams import Send
from .validation_errors import bounded_details

if TYPE_CHECKING:
    from .app import MangumWS

__all__ = ["DEFAULT_SESSION_TTL", "hello", "park", "principal_of"]

logger = logging.getLogger("mangum_ws")

# How long a session (and each topic's kept events) outlives its connection: long enough for a
# phone to walk out of a lift, short enough that the store stays small.
DEFAULT_SESSION_TTL: Final = 15 * 60.0
TOKEN_BYTES: Final = 24  # 192 random bits
MAX_SINCE_TOPICS: Final = 256
MOVE_ATTEMPTS: Final = 3  # a session claimed by another $hello meanwhile: taken over again


class HelloData(BaseModel):
    """What ``$hello`` carries; unknown fields are ignored (later clients may send more)."""

    model_config = ConfigDict(populate_by_name=True)

    session: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    since: dict[str, NonNegativeInt] = Field(default_factory=dict, max_length=MAX_SINCE_TOPICS)
    schema_hash: str | None = Field(default=None, alias="schema", max_length=MAX_NAME_CHARS)


def principal_of(conn: Connection) -> str | None:
    """Who a session is bound to: the principal the connection was authorized as (None:
    anonymous)."""
    return conn.principal


def _expiry(ttl: float, connected: bool) -> float:
    # While its connection is open, a session must outlive it (up to API Gateway's 2 h, since
    # $disconnect is best-effort); once parked, it waits ``ttl`` for the client to come back.
    return time.time() + ttl + (MAX_CONNECTION_AGE if connected else 0.0)


async def hello(
    owner: MangumWS, send: Send, conn: Connection, request_id: str | None, data: Any
) -> str | None:
    """Answer a ``$hello``: start or resume a session, replaying what it missed through ``send``."""
    try:
        request = HelloData.model_validate({} if data is None else data)
    except ValidationError as exc:
        return error_frame(
            ErrorCode.INVALID_INPUT,
            f"invalid data for {HELLO!r}",
            request_id=request_id,
            action=HELLO,
            details=bounded_details(exc, MAX_ERROR_DETAILS),
        )
    store = owner.store
    principal = principal_of(conn)
    session = await store.get_session(request.session) if request.session else None
    if session is not None and session.principal != principal:
        logger.warning(
            "connection %s presented a session token of another principal; refused",
            conn.connection_id,
        )
        return error_frame(
            ErrorCode.UNAUTHORIZED,
            "this session belongs to another principal",
            request_id=request_id,
            action=HELLO,
        )
    schema_ok = _schema_ok(owner, request.schema_hash, conn)
    replayed, lost = 0, list[str]()
    expiry = _expiry(owner.session_ttl, True)
    if session is None:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        await store.put_session(SessionRecord(token, principal, conn.connection_id, expiry))
    else:
        token = session.token
        topics = await _resume(store, session, conn.connection_id, expiry)
    await store.bind_session(conn.connection_id, token)
    if session is not None:
        try:
            replayed, lost = await _replay(store, topics, request.since, send)
        except ConnectionGone:
            return None  # the new connection closed too: the next $hello takes it from here
    answer = {
        "session": token,
        "resumed": session is not None,
        "replayed": replayed,
        "lost": lost,
        "schema_ok": schema_ok,
    }
    return result_frame(request_id, HELLO, answer)


def _schema_ok(owner: MangumWS, client_hash: str | None, conn: Connection) -> bool | None:
    if client_hash is None:
        return None
    try:
        server_hash = owner.schema_hash
    except Exception:  # a registry codegen cannot describe: say nothing rather than fail
        logger.exception("the registry's schema hash could not be computed")
        return None
    if client_hash == server_hash:
        return True
    logger.warning(
        "connection %s runs a client generated from another schema (%s; the server's is %s): "
        "regenerate it with python -m mangum_ws.codegen",
        conn.connection_id,
        client_hash[:MAX_NAME_CHARS],
        server_hash,
    )
    return False


async def _resume(
    store: ConnectionStore, session: SessionRecord, new_id: str, expiry: float
) -> dict[str, int]:
    """Take the session over for ``new_id``; return its topics.

    The session is claimed only while it still belongs to the connection it was taken from: two
    $hellos of one client can run at once (a reconnect while the last one was slow), and the
    one whose claim fails takes the session over again from where the other put it, if its
    connection is the newer one (a client's last connection wins).
    """
    topics: dict[str, int] = {}
    for _ in range(MOVE_ATTEMPTS):
        topics = await _take_over(store, session, new_id)
        claimed = dataclasses.replace(
            session, connection_id=new_id, expires_at=expiry, topics={}, state={}
        )
        if await store.put_session(claimed, if_connection=session.connection_id):
            break
        current = await store.get_session(session.token)
        if current is None or not await _newer(store, new_id, current.connection_id):
            break
        session = current
    return topics


async def _newer(store: ConnectionStore, mine: str, theirs: str | None) -> bool:
    """True when connection ``mine`` opened after ``theirs`` (or ``theirs`` is gone)."""
    if theirs is None or theirs == mine:
        return True
    me, them = await store.get(mine), await store.get(theirs)
    if me is None:
        return False  # this connection is gone already
    return them is None or me.connected_at >= them.connected_at


async def _take_over(store: ConnectionStore, session: SessionRecord, new_id: str) -> dict[str, int]:
    """Move the session's subscriptions and state to ``new_id``; return its topics (topic ->
    the seq its subscription started after)."""
    old_id = session.connection_id
    if old_id == new_id:  # a second $hello on the same connection: nothing moves
        return await store.subscriptions(new_id)
    live: dict[str, int] = {}
    state: Mapping[str, Any] = {}
    old = None
    if old_id is not None:
        live = await store.subscriptions(old_id)
        old = await store.get(old_id)
    # Read again after the old connection's: a $disconnect parking them meanwhile puts them
    # in the session before it removes them from the connection.
    parked = await store.get_session(session.token) or session
    # What this connection has already (a $hello that failed half-way, retried) is replayed too.
    topics = {**await store.subscriptions(new_id), **parked.topics, **live}
    state = old.state if old is not None else parked.state
    for topic, after in topics.items():
        await store.subscribe(new_id, topic, after)
    if state:
        await store.set_state(new_id, state)
    if old_id is not None:
        for topic in live:
            await store.unsubscribe(old_id, topic)
        if old is not None and old.state:
            await store.set_state(old_id, {})
    return topics


async def _replay(
    store: ConnectionStore, topics: Mapping[str, int], since: Mapping[str, int], send: Send
) -> tuple[int, list[str]]:
    """Send each topic's kept events past what the client saw, oldest first; return how many
    went and the topics whose gap is past what the store keeps."""
    replayed, lost = 0, []
    for topic, start in sorted(topics.items()):
        after = max(since.get(topic, start), start)
        history = await store.history(topic, after)
        if history.head == after:
            continue
        first = history.events[0][0] if history.events else None
        if history.head < after or first != after + 1:  # renumbered, or the gap expired
            lost.append(topic)
            continue
        for _seq, frame in history.events:
            await send(frame)
            replayed += 1
    return replayed, lost


async def park(store: ConnectionStore, connection_id: str, ttl: float) -> None:
    """Keep a closing connection's subscriptions and state in its session, for a resume."""
    record = await store.get(connection_id)
    if record is None or record.session is None:
        return
    session = await store.get_session(record.session)
    if session is None or session.connection_id != connection_id:
        return  # already resumed elsewhere
    topics = {**session.topics, **await store.subscriptions(connection_id)}
    parked = dataclasses.replace(
        session, topics=topics, state=dict(record.state), expires_at=_expiry(ttl, False)
    )
    await store.put_session(parked, if_connection=connection_id)
