"""A feed app for the session tests: join a topic, publish numbered items, keep a name."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from mangum_ws import Connection, MangumWS


class Join(BaseModel):
    topic: str


class Post(BaseModel):
    topic: str
    n: int


class Item(BaseModel):
    n: int


class Name(BaseModel):
    name: str


def feed_app(ws: MangumWS) -> FastAPI:
    app = FastAPI()
    item = ws.event("feed.item", Item)

    @ws.action("feed.join")
    async def join(data: Join, conn: Connection) -> None:
        await ws.subscribe(conn.connection_id, data.topic)

    @ws.action("feed.post")
    async def post(data: Post) -> int:
        report = await ws.publish(data.topic, item.name, Item(n=data.n))
        return len(report.delivered)

    @ws.action("me.set")
    async def set_name(data: Name, conn: Connection) -> None:
        await ws.set_state(conn.connection_id, {"name": data.name})

    @ws.action("me.get")
    async def get_name(conn: Connection) -> dict[str, Any]:
        record = await ws.connection(conn.connection_id)
        return dict(record.state) if record is not None else {}

    app.include_router(ws.router)
    return app


def principal_from_query(query: Any) -> dict[str, Any]:
    """The authorizer context the tests' authorizers give: ``?who=alice`` is principal alice,
    no ``who`` is anonymous (a context without principalId)."""
    who = query.get("who")
    return {"principalId": who} if who else {"plan": "free"}


# The registry codegen reads for the generated client of the session tests.
ws = MangumWS()
feed_app(ws)
