"""FastAPI's Depends on actions, through the Lambda path (route responses) and ws.mount: guards
answer ``forbidden`` with the caller's id, ``yield`` dependencies are cleaned up after the
action whatever happened, and each dependency runs once per call."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, HTTPException
from mangum import Mangum
from pydantic import BaseModel
from websockets.sync.client import connect

from mangum_ws import (
    ActionError,
    Connection,
    ConnectRequest,
    Forbidden,
    MangumWS,
    Principal,
    RegistrationError,
    Unauthorized,
)
from tests.support.events import FakeLambdaContext, message_event
from tests.support.messages import call
from tests.support.server import serve


class User(BaseModel):
    name: str
    role: str


class Out(BaseModel):
    user: str
    same_db: bool
    counted: int


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def add(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)


def current_user(conn: Connection) -> User:  # sync: runs in a worker thread
    if conn.principal is None:
        raise Unauthorized("sign in first")
    return User(name=conn.principal, role=str(conn.authorizer.get("role", "member")))


def require_role(role: str) -> Any:
    async def guard(user: Annotated[User, Depends(current_user)]) -> None:
        if user.role != role:
            raise Forbidden(f"{role}s only")

    return guard


def build(log: Log) -> MangumWS:
    ws = MangumWS(route_responses=True)
    counter = {"n": 0}

    async def db() -> AsyncIterator[dict[str, Any]]:
        session = {"id": len(log.lines)}
        log.add("db open")
        try:
            yield session
        except Exception as exc:
            log.add(f"db rollback: {type(exc).__name__}")
            raise
        else:
            log.add("db commit")
        finally:
            log.add("db close")

    def audit(conn: Connection) -> Iterator[str]:  # a sync yield dependency
        log.add(f"audit start {conn.connection_id}")
        yield "audited"
        log.add("audit end")

    def count() -> int:
        counter["n"] += 1
        return counter["n"]

    async def repo(session: dict[str, Any] = Depends(db), n: int = Depends(count)) -> Any:
        return session, n

    @ws.action("profile")
    async def profile(
        user: Annotated[User, Depends(current_user)],
        session: dict[str, Any] = Depends(db),
        repository: Any = Depends(repo),
        first: int = Depends(count),
        again: int = Depends(count),
        fresh: int = Depends(count, use_cache=False),
    ) -> Out:
        assert first == again == repository[1]  # one run of `count` per call...
        assert fresh == first + 1  # ...but use_cache=False runs it again
        return Out(user=user.name, same_db=session is repository[0], counted=first)

    @ws.action("ban", dependencies=[Depends(require_role("admin")), Depends(audit)])
    async def ban(session: dict[str, Any] = Depends(db)) -> None:
        log.add("banned")

    @ws.action("fail", dependencies=[Depends(audit)])
    async def fail(session: dict[str, Any] = Depends(db)) -> None:
        raise ActionError("nope", "refused by the action")

    @ws.action("crash", dependencies=[Depends(audit)])
    async def crash(session: dict[str, Any] = Depends(db)) -> None:
        raise RuntimeError("boom")

    def teapot() -> None:
        raise HTTPException(status_code=403, detail="FastAPI says no")

    @ws.action("fastapi", dependencies=[Depends(teapot)])
    async def fastapi_guarded() -> None:
        log.add("never")

    return ws


def lambda_call(ws: MangumWS, raw: str, authorizer: dict[str, Any] | None) -> Any:
    app = FastAPI()
    app.include_router(ws.router)
    handler = Mangum(app, custom_handlers=[ws.handler])
    answer = handler(message_event(raw=raw, authorizer=authorizer), FakeLambdaContext())
    return json.loads(answer["body"])


ADMIN = {"principalId": "ann", "role": "admin"}
MEMBER = {"principalId": "bob", "role": "member"}


def test_a_guard_answers_forbidden_with_the_callers_id_and_cleans_up() -> None:
    log = Log()
    ws = build(log)
    frame = lambda_call(ws, call("ban", "b1", {}), MEMBER)
    assert frame == {
        "type": "error",
        "id": "b1",
        "action": "ban",
        "error": {"code": "forbidden", "message": "admins only", "details": None},
    }
    assert log.lines == []  # the guard refused before audit or db opened
    assert lambda_call(ws, call("ban", "b2", {}), ADMIN)["type"] == "result"
    assert log.lines == [
        "audit start L0SM9cOFvHcCIhw=",
        "db open",
        "banned",
        "db commit",
        "db close",
        "audit end",
    ]


def test_no_principal_is_unauthorized() -> None:
    frame = lambda_call(build(Log()), call("profile", "p1"), None)
    assert frame["error"] == {"code": "unauthorized", "message": "sign in first", "details": None}
    assert frame["id"] == "p1"


@pytest.mark.parametrize(
    ("action", "outcome", "rollback"),
    [
        ("fail", {"code": "nope", "message": "refused by the action", "details": None}, None),
        (
            "crash",
            {"code": "internal_error", "message": "internal error", "details": None},
            "RuntimeError",
        ),
    ],
)
def test_yield_dependencies_are_cleaned_up_on_failure_and_crash(
    action: str, outcome: dict[str, Any], rollback: str | None
) -> None:
    log = Log()
    frame = lambda_call(build(log), call(action, "x"), ADMIN)
    assert (frame["id"], frame["error"]) == ("x", outcome)
    middle = [f"db rollback: {rollback}"] if rollback else ["db commit"]
    assert log.lines == ["audit start L0SM9cOFvHcCIhw=", "db open", *middle, "db close"] + (
        [] if rollback else ["audit end"]
    )


def test_a_fastapi_http_exception_403_is_forbidden() -> None:
    log = Log()
    frame = lambda_call(build(log), call("fastapi", "f"), ADMIN)
    assert frame["error"]["code"] == "forbidden"
    assert frame["error"]["message"] == "FastAPI says no"
    assert "never" not in log.lines


def test_dependencies_are_cached_per_call_over_ws_mount() -> None:
    log = Log()
    ws = build(log)

    @ws.authorizer(identity=["query:user"])
    def sign_in(request: ConnectRequest) -> Principal:
        return Principal(request.query["user"], {"role": "member"})

    app = FastAPI()
    ws.mount(app)
    with serve(app) as address, connect(f"ws://{address}/?user=ann") as client:
        counted = []
        for n in range(3):
            client.send(call("profile", str(n)))
            frame = json.loads(client.recv(timeout=10))
            assert frame["data"]["user"] == "ann"
            assert frame["data"]["same_db"] is True
            counted.append(frame["data"]["counted"])
        assert counted == [1, 3, 5]  # per call: one cached run of `count`, one uncached
        client.send(call("ban", "b"))
        assert json.loads(client.recv(timeout=10))["error"]["code"] == "forbidden"
    assert log.lines.count("db open") == log.lines.count("db close") == 3


def test_bad_dependencies_are_refused_at_registration() -> None:
    ws = MangumWS()

    def needs_input(text: str) -> str:
        return text

    with pytest.raises(RegistrationError, match="parameter 'text' of dependency"):
        ws.action("a")(lambda value=Depends(needs_input): None)
    with pytest.raises(RegistrationError, match="dependencies= takes Depends"):
        ws.action("b", dependencies=[needs_input])(lambda: None)


def test_a_streams_yield_dependency_is_cleaned_up_when_it_is_cancelled() -> None:
    ws = MangumWS()
    log = Log()
    app = FastAPI()

    async def lease(conn: Connection) -> AsyncIterator[str]:
        log.add("lease taken")
        try:
            yield "lease"
        finally:
            log.add("lease returned")

    @ws.action("ticks")
    async def ticks(held: str = Depends(lease)) -> AsyncIterator[User]:
        for n in range(1000):
            yield User(name=f"{held}-{n}", role="tick")
            await asyncio.sleep(0.01)

    ws.mount(app)
    with serve(app) as address, connect(f"ws://{address}/") as client:
        client.send(call("ticks", "t"))
        first = json.loads(client.recv(timeout=10))
        assert (first["type"], first["data"]["name"]) == ("chunk", "lease-0")
        client.send(json.dumps({"action": "$cancel", "id": "t"}))
        while (frame := json.loads(client.recv(timeout=10)))["type"] == "chunk":
            pass
        assert frame["error"]["code"] == "cancelled"
    assert log.lines == ["lease taken", "lease returned"]
