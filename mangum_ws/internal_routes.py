"""The internal route the Lambda bridge calls: invisible to every ordinary HTTP request.

It is one ``Mount`` whose ``matches`` looks for the bridge's :class:`Invocation` in the scope
instead of at the path. A request without it matches nothing, so whatever the method or the
path under ``/internal/websocket``, it gets exactly what the app answers for a path that does
not exist (no 405, no redirect, no different 404). A Mount, because FastAPI's
``include_router`` keeps a Mount's own class (it rebuilds a plain Route from its endpoint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.routing import Match, Mount, NoMatchFound
from starlette.types import Receive, Scope, Send

from .lambda_bridge import INTERNAL_PREFIX, INVOCATION_KEY, Invocation

if TYPE_CHECKING:
    from starlette.datastructures import URLPath

    from .app import MangumWS


class InternalRoute(Mount):
    def __init__(self, owner: MangumWS) -> None:
        super().__init__(INTERNAL_PREFIX, app=self.answer)
        self.owner = owner

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        found = scope.get(INVOCATION_KEY)
        if isinstance(found, Invocation) and found.owner is self.owner:
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: object) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        invocation: Invocation = scope[INVOCATION_KEY]
        reply = await self.owner.core.lambda_event(invocation.event, invocation.context)
        headers = (
            []
            if reply.subprotocol is None
            else [(b"sec-websocket-protocol", reply.subprotocol.encode())]
        )
        body = reply.body.encode()
        if body:
            kind = b"application/json" if body[:1] == b"{" else b"text/plain; charset=utf-8"
            headers.append((b"content-type", kind))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def make_internal_router(owner: MangumWS) -> APIRouter:
    router = APIRouter()
    router.routes.append(InternalRoute(owner))
    return router
