"""$connect and $disconnect, shared by the Lambda bridge and the local endpoint."""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import NamedTuple

from .connection import Connection
from .dispatch import call
from .errors import Reject
from .registry import Hook, Registry
from .sessions import DEFAULT_SESSION_TTL, park
from .store import ConnectionRecord, ConnectionStore

logger = logging.getLogger("mangum_ws")

# The id whose $connect is running in this task: API Gateway answers 410 to posts to it.
connecting_id: ContextVar[str | None] = ContextVar("mangum_ws_connecting_id", default=None)


class Refusal(NamedTuple):
    status_code: int
    message: str


async def admit(registry: Registry, conn: Connection, store: ConnectionStore) -> Refusal | None:
    """Run the on_connect hook; a Refusal means the upgrade must be refused with its status.

    The hook refuses by raising ``Reject(status, message)`` or by returning ``False``
    (403). Any other exception refuses with 500 and is logged with its traceback.
    """
    hook = registry.on_connect
    if hook is not None:
        refusal = await _run_connect_hook(hook, conn)
        if refusal is not None:
            return refusal
    try:
        await store.add(
            ConnectionRecord(
                conn.connection_id,
                source_ip=conn.source_ip,
                query=dict(conn.query),
                authorizer=dict(conn.authorizer),
            )
        )
    except Exception:
        logger.exception("could not store connection %s", conn.connection_id)
        return Refusal(500, "Internal Server Error")
    return None


async def _run_connect_hook(hook: Hook, conn: Connection) -> Refusal | None:
    token = connecting_id.set(conn.connection_id)
    try:
        verdict = await call(
            hook.func, hook.is_async, conn if hook.wants_connection else conn.connection_id
        )
    except Reject as exc:
        return Refusal(exc.status_code, exc.message)
    except Exception:
        logger.exception("on_connect hook failed for connection %s", conn.connection_id)
        return Refusal(500, "Internal Server Error")
    finally:
        connecting_id.reset(token)
    if verdict is False:
        return Refusal(403, "Forbidden")
    return None


async def farewell(
    registry: Registry,
    conn: Connection,
    store: ConnectionStore,
    session_ttl: float = DEFAULT_SESSION_TTL,
) -> None:
    """Run the on_disconnect hook, then forget the connection and its subscriptions.
    Failures are logged: the connection is gone either way (and store items expire)."""
    hook = registry.on_disconnect
    if hook is not None:
        try:
            who = conn if hook.wants_connection else conn.connection_id
            await call(hook.func, hook.is_async, who)
        except Exception:
            logger.exception("on_disconnect hook failed for connection %s", conn.connection_id)
    await forget(store, conn.connection_id, session_ttl)


async def forget(
    store: ConnectionStore, connection_id: str, session_ttl: float = DEFAULT_SESSION_TTL
) -> None:
    """Remove a closed connection and its subscriptions from the store, parking them in its
    session first (if it has one) for the client to take back when it reconnects.

    A failure is logged, never raised: the connection is gone either way, whatever called this
    (a disconnect, a send that found it gone) must still finish, and store items expire by TTL.
    """
    try:
        await park(store, connection_id, session_ttl)
    except Exception:
        logger.exception("could not park the session of connection %s", connection_id)
    try:
        await store.remove(connection_id)
    except Exception:
        logger.exception("could not remove connection %s from the store", connection_id)
