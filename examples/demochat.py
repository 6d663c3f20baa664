"""Chat demo: sign-in with a token, rooms, join/leave notices, validation errors shown in the
page, a moderator-only kick, and a pretend assistant whose reply streams word by word, with a
Stop button.

    uv run --no-dev --extra local --extra demo python examples/demochat.py   # then open the URL

Signing in: the page asks ``POST /token`` for a signed JWT (HS256, PyJWT) naming the nickname,
and connects with ``?token=...``. The app's ``@ws.authorizer`` checks it before ``$connect`` (on
AWS as the API's Lambda REQUEST authorizer), so the nickname is the connection's principal on
every event. The signing secret is ``DEMO_JWT_SECRET`` (a demo default otherwise: set your own
anywhere that matters); whoever gives ``DEMO_MODERATOR_CODE`` (default ``let-me-moderate``) at
sign-in is a moderator and may ``chat.kick``.

Serves on HOST:PORT from the environment (default 127.0.0.1:8000); PORT=0 picks a free port.

With ``APIGW_MANAGEMENT_URL`` set, the same app runs on Lambda behind an API Gateway WebSocket
API (``handler`` below). Nothing lives in module memory: a room is a topic of the connection
store and each connection's room and nickname are its state, so the demo works the same on one
process and on many Lambda instances. ``CONNECTIONS_TABLE`` (set by the template
``python -m mangum_ws.deploy``) puts the store in DynamoDB; without it, it is in memory.
``DEMO_WORD_DELAY`` is the assistant's pause before each word, in seconds (default 0.1).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import jwt  # PyJWT: the [demo] extra
from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, Response
from mangum import Mangum
from pydantic import BaseModel, Field

from mangum_ws import (
    ActionError,
    Connection,
    ConnectRequest,
    DynamoDBStore,
    Forbidden,
    MangumWS,
    Principal,
    Reject,
    Unauthorized,
)

app = FastAPI(title="mangum-ws chat")
table = os.getenv("CONNECTIONS_TABLE")
ws = MangumWS(
    endpoint_url=os.getenv("APIGW_MANAGEMENT_URL"),
    store=DynamoDBStore(table) if table else None,  # None: in this process's memory
)

Nick = Field(min_length=1, max_length=24, pattern=r"^[\w .-]+$")
Room = Field(min_length=1, max_length=32, pattern=r"^[\w-]+$")

# A demo default, so that the demo runs as is; anything real sets its own secret.
SECRET = os.getenv("DEMO_JWT_SECRET", "mangum-ws-demo-secret-set-DEMO_JWT_SECRET-for-real-use")
MODERATOR_CODE = os.getenv("DEMO_MODERATOR_CODE", "let-me-moderate")
TOKEN_LIFETIME = timedelta(hours=12)


class SignIn(BaseModel):
    nick: str = Nick
    moderator_code: str = ""


class SignedIn(BaseModel):
    token: str
    role: str


def issue_token(nick: str, role: str = "member") -> str:
    """A signed JWT naming the nickname and the role: what the page connects with."""
    claims = {"sub": nick, "role": role, "exp": datetime.now(UTC) + TOKEN_LIFETIME}
    return str(jwt.encode(claims, SECRET, algorithm="HS256"))


@ws.authorizer(identity=["query:token"])
def sign_in(request: ConnectRequest) -> Principal:
    """Runs before $connect: a valid token's nickname becomes the connection's principal."""
    try:
        claims = jwt.decode(
            request.query["token"], SECRET, algorithms=["HS256"], options={"require": ["exp"]}
        )
        nick, role = SignIn(nick=claims["sub"]).nick, str(claims.get("role", "member"))
    except (jwt.InvalidTokenError, KeyError, ValueError):
        raise Reject(401, "Unauthorized") from None
    return Principal(nick, {"role": role})


def require_role(role: str) -> Callable[[Connection], None]:
    """A guard for ``dependencies=[Depends(require_role(...))]``."""

    def guard(conn: Connection) -> None:
        if conn.authorizer.get("role") != role:
            raise Forbidden(f"only a {role} may do this")

    return guard


def nickname(conn: Connection) -> str:
    """The signed-in nickname: the principal API Gateway hands every event."""
    if conn.principal is None:  # only behind an API without the app's authorizer
        raise Unauthorized("sign in first")
    return conn.principal


class JoinIn(BaseModel):
    room: str = Room


class KickIn(BaseModel):
    nick: str = Nick


class Kicked(BaseModel):
    nick: str
    room: str


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


class AskIn(BaseModel):
    prompt: str = Field(min_length=1, max_length=500)


class Token(BaseModel):
    text: str  # a word, with the space before it (none before the first), as a model's tokens


class ReplyEnded(BaseModel):
    words: int  # how many the server produced
    total: int
    stopped: bool


message_event = ws.event("chat.message", ChatMessage)
joined_event = ws.event("chat.joined", Presence)
left_event = ws.event("chat.left", Presence)
reply_ended_event = ws.event("assistant.ended", ReplyEnded)


def topic(room: str) -> str:
    return f"room:{room}"


async def seat(connection_id: str) -> tuple[str, str] | None:
    """The (room, nick) a connection sits in, from its state in the store."""
    record = await ws.connection(connection_id)
    if record is None or "room" not in record.state:
        return None
    return record.state["room"], record.state["nick"]


async def room_members(room: str) -> dict[str, str]:
    """connection id -> nick of everyone in ``room``."""
    ids = await ws.store.subscribers(topic(room))
    records = await asyncio.gather(*(ws.connection(cid) for cid in ids))
    return {
        record.connection_id: record.state["nick"]
        for record in records
        if record is not None and record.state.get("room") == room
    }


async def leave(connection_id: str, *, disconnecting: bool = False) -> None:
    current = await seat(connection_id)
    if current is None:
        return
    room, nick = current
    await ws.unsubscribe(connection_id, topic(room))
    if not disconnecting:  # the store forgets a closed connection by itself
        await ws.set_state(connection_id, {})
    others = await room_members(room)
    presence = Presence(room=room, nick=nick, members=sorted(others.values()))
    await left_event.publish(topic(room), presence)  # gone ids leave the store


@ws.action("chat.join")
async def join(data: JoinIn, conn: Connection, nick: Annotated[str, Depends(nickname)]) -> JoinOut:
    """Join a room under your signed-in nickname (leaving the current room, if any)."""
    me = conn.connection_id
    # Check, then set: two joins racing on two Lambda instances could both take one nick.
    # Fine for a demo; an app that must never allow it claims the nick with a conditional write.
    others = {cid: who for cid, who in (await room_members(data.room)).items() if cid != me}
    if nick in others.values():
        raise ActionError(
            "nick_taken",
            f"{nick!r} is already in {data.room!r}",
            details={"room": data.room, "nick": nick},
        )
    await leave(me)
    await ws.set_state(me, {"room": data.room, "nick": nick})
    everyone = sorted([*others.values(), nick])
    presence = Presence(room=data.room, nick=nick, members=everyone)
    await joined_event.publish(topic(data.room), presence)  # before we subscribe
    await ws.subscribe(me, topic(data.room))
    return JoinOut(room=data.room, members=everyone)


@ws.action("chat.send")
async def send(data: SendIn, conn: Connection) -> SendOut:
    """Send a message to everyone in your room, yourself included."""
    current = await seat(conn.connection_id)
    if current is None:
        raise ActionError("not_joined", "join a room before sending")
    room, nick = current
    message = ChatMessage(
        message_id=uuid.uuid4().hex,
        room=room,
        nick=nick,
        text=data.text,
        sent_at=datetime.now(UTC),
    )
    await message_event.publish(topic(room), message)
    return SendOut(message_id=message.message_id)


@ws.action("chat.leave")
async def leave_room(conn: Connection) -> None:
    """Leave the current room."""
    await leave(conn.connection_id)


@ws.action("chat.kick", dependencies=[Depends(require_role("moderator"))])
async def kick(data: KickIn, conn: Connection) -> Kicked:
    """Moderators only: close the connection of someone in your room."""
    current = await seat(conn.connection_id)
    if current is None:
        raise ActionError("not_joined", "join a room before kicking")
    room, _ = current
    found = [cid for cid, who in (await room_members(room)).items() if who == data.nick]
    if not found:
        raise ActionError("no_such_member", f"{data.nick!r} is not in {room!r}")
    for cid in found:
        await ws.disconnect(cid)  # its $disconnect tells the room it left
    return Kicked(nick=data.nick, room=room)


@ws.on_disconnect
async def on_disconnect(connection_id: str) -> None:
    await leave(connection_id, disconnecting=True)


# The pause before each word: a model's pace. Tests slow it down to press Stop mid-reply.
WORD_DELAY = float(os.getenv("DEMO_WORD_DELAY", "0.1"))
SCRIPT = (
    "I am a pretend assistant: no model, no network, just this script, sent one word at a time "
    "as a model's tokens would be. Each word is a chunk frame of the stream, typed by the "
    "generated client. Press Stop and the client sends a cancel: the server stops this generator "
    "where it is, and its finally tells you how far it got. On Lambda the cancel arrives in "
    "another invocation and reaches this one through the connection store."
)


def reply_words(prompt: str) -> list[str]:
    """The assistant's reply to ``prompt``, word by word (always the same for a prompt)."""
    return [*f"You said: {prompt}".split(), *SCRIPT.split()]


@ws.action("assistant.reply")
async def reply(data: AskIn, conn: Connection) -> AsyncIterator[Token]:
    """Stream a canned reply to you alone, word by word; Stop (a cancel) ends it early."""
    words = reply_words(data.prompt)
    produced = 0
    try:
        for word in words:
            await asyncio.sleep(WORD_DELAY)
            produced += 1
            yield Token(text=word if produced == 1 else f" {word}")
    finally:  # runs on a cancel too: this event is the server saying the Stop reached it
        ended = ReplyEnded(words=produced, total=len(words), stopped=produced < len(words))
        await reply_ended_event.emit(ended, connection_ids=[conn.connection_id])


PAGE = Path(__file__).with_name("demochat.html")
CLIENT = Path(__file__).parent.parent / "clients" / "demochat" / "client.js"


# response_model=None: no response field to build, which spares FastAPI importing pydantic.v1
# (~100 ms of Lambda cold start) to check whether `str` is a v1 model.
@app.get("/", response_class=HTMLResponse, include_in_schema=False, response_model=None)
async def page() -> str:
    return PAGE.read_text(encoding="utf-8")


@app.post("/token", include_in_schema=False)
async def token(data: SignIn) -> SignedIn:
    """The demo's sign-in: anyone may pick a nickname; the moderator code makes a moderator."""
    moderator = hmac.compare_digest(data.moderator_code.encode(), MODERATOR_CODE.encode())
    role = "moderator" if moderator else "member"
    return SignedIn(token=issue_token(data.nick, role), role=role)


@app.get("/client.js", include_in_schema=False, response_model=None)
async def client_js() -> Response:
    """The generated client, compiled (clients/demochat): the page needs no build step."""
    return Response(CLIENT.read_bytes(), media_type="text/javascript")


app.include_router(ws.router)
ws.mount(app, path="/ws")
handler = Mangum(app, custom_handlers=[ws.handler])


def main(argv: list[str] | None = None) -> None:
    from mangum_ws.cli import Parser, bind, fail
    from mangum_ws.local.server import serve  # the [local] extra

    Parser("python examples/demochat.py", __doc__).parse_args(argv)
    host, port = os.getenv("HOST", "127.0.0.1"), os.getenv("PORT", "8000")
    if not port.isdigit() or int(port) > 65535:
        fail(f"PORT must be a port number (0 for any free one), not {port!r}")
    sock = bind(host, int(port), "PORT={port}")
    url = f"http://{host}:{sock.getsockname()[1]}/"
    serve(app, sock, on_ready=lambda: print(f"Chat demo: {url}  (open it in two tabs)", flush=True))


if __name__ == "__main__":
    main()
