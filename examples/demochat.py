"""Chat demo: rooms, nicknames, join/leave notices, validation errors shown in the page.

    uv run python examples/demochat.py      # then open http://localhost:8000 in two tabs

With ``APIGW_MANAGEMENT_URL`` set, the same app runs on Lambda behind an API Gateway WebSocket
API (``handler`` below). Room membership lives in this process's memory: fine locally and on
the local emulator; on Lambda, where invocations share nothing, use a connection store.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from mangum import Mangum
from pydantic import BaseModel, Field

from mangum_ws import ActionError, Connection, MangumWS

app = FastAPI(title="mangum-ws chat")
ws = MangumWS(endpoint_url=os.getenv("APIGW_MANAGEMENT_URL"))

Nick = Field(min_length=1, max_length=24, pattern=r"^[\w .-]+$")
Room = Field(min_length=1, max_length=32, pattern=r"^[\w-]+$")


class JoinIn(BaseModel):
    room: str = Room
    nick: str = Nick


class JoinOut(BaseModel):
    room: str
    members: list[str]


class SendIn(BaseModel):
    text: str = Field(min_length=1, max_length=500)


class SendOut(BaseModel):
    message_id: str


class ChatMessage(BaseModel):
    message_id: str
    room: str
    nick: str
    text: str
    sent_at: datetime


class Presence(BaseModel):
    room: str
    nick: str
    members: list[str]


message_event = ws.event("chat.message", ChatMessage)
joined_event = ws.event("chat.joined", Presence)
left_event = ws.event("chat.left", Presence)

# connection id -> (room, nick)
members: dict[str, tuple[str, str]] = {}


def room_members(room: str) -> dict[str, str]:
    return {cid: nick for cid, (r, nick) in members.items() if r == room}


async def leave(connection_id: str) -> None:
    seat = members.pop(connection_id, None)
    if seat is None:
        return
    room, nick = seat
    others = room_members(room)
    gone = await left_event.emit(
        Presence(room=room, nick=nick, members=sorted(others.values())),
        connection_ids=others,
    )
    for cid in gone:
        members.pop(cid, None)


@ws.action("chat.join")
async def join(data: JoinIn, conn: Connection) -> JoinOut:
    """Join a room under a nickname (leaving the current room, if any)."""
    present = room_members(data.room)
    if data.nick in (nick for cid, nick in present.items() if cid != conn.connection_id):
        raise ActionError(
            "nick_taken",
            f"{data.nick!r} is already in {data.room!r}",
            details={"room": data.room, "nick": data.nick},
        )
    await leave(conn.connection_id)
    members[conn.connection_id] = (data.room, data.nick)
    everyone = sorted(room_members(data.room).values())
    others = set(room_members(data.room)) - {conn.connection_id}
    await joined_event.emit(
        Presence(room=data.room, nick=data.nick, members=everyone), connection_ids=others
    )
    return JoinOut(room=data.room, members=everyone)


@ws.action("chat.send")
async def send(data: SendIn, conn: Connection) -> SendOut:
    """Send a message to everyone in your room, yourself included."""
    seat = members.get(conn.connection_id)
    if seat is None:
        raise ActionError("not_joined", "join a room before sending")
    room, nick = seat
    message = ChatMessage(
        message_id=uuid.uuid4().hex,
        room=room,
        nick=nick,
        text=data.text,
        sent_at=datetime.now(UTC),
    )
    gone = await message_event.emit(message, connection_ids=room_members(room))
    for cid in gone:
        members.pop(cid, None)
    return SendOut(message_id=message.message_id)


@ws.action("chat.leave")
async def leave_room(conn: Connection) -> None:
    """Leave the current room."""
    await leave(conn.connection_id)


@ws.on_disconnect
async def on_disconnect(connection_id: str) -> None:
    await leave(connection_id)


PAGE = Path(__file__).with_name("demochat.html")
CLIENT = Path(__file__).parent.parent / "clients" / "demochat" / "client.js"


# response_model=None: no response field to build, which spares FastAPI importing pydantic.v1
# (~100 ms of Lambda cold start) to check whether `str` is a v1 model.
@app.get("/", response_class=HTMLResponse, include_in_schema=False, response_model=None)
async def page() -> str:
    return PAGE.read_text(encoding="utf-8")


@app.get("/client.js", include_in_schema=False, response_model=None)
async def client_js() -> Response:
    """The generated client, compiled (clients/demochat): the page needs no build step."""
    return Response(CLIENT.read_bytes(), media_type="text/javascript")


app.include_router(ws.router)
ws.mount(app, path="/ws")
handler = Mangum(app, custom_handlers=[ws.handler])


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host=os.getenv("HOST", "127.0.0.1"), port=int(os.getenv("PORT", "8000")))
