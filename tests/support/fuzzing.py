"""Fuzzing the event core (issue 11): the app under test, input generators, and the contract
checks, shared by tests/test_fuzz.py (hypothesis, bounded) and benchmarks/fuzz.py (seeded
``random``, 100,000 events).

Everything here drives public surfaces only: ``Mangum(app, custom_handlers=[ws.handler])``
called with API Gateway events, ``ws.mount(app)`` on a real uvicorn, and ``LocalApiGateway``
in front of the Lambda handler, through real ``websockets`` clients on 127.0.0.1.

The contract, per path (see the issue and DESIGN.md section 2):
- the Lambda handler never raises and never answers 500, whatever the event;
- a WebSocket-shaped event that is malformed gets a 4xx and at most one WARNING+ log line;
- every message of at most 128 KB that is a JSON object with a string ``id`` of at most 128
  characters gets exactly one frame carrying that id; no frame exceeds 128 KB;
- on sockets: binary frame -> close 1003, message over 128 KB -> close 1009, and on the local
  API Gateway one frame over 32 KB -> close 1009; anything else never drops the connection;
- the only tracebacks logged are the deliberately crashing action's, one per call;
- the local API Gateway invokes ``$disconnect`` for every connection it accepted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import itertools
import json
import logging
import os
import random
import socket
import string
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel, Field
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from mangum_ws import Connection, MangumWS
from mangum_ws.local import LocalApiGateway
from tests.support.events import FakeLambdaContext, connect_event, disconnect_event, message_event
from tests.support.management_api import ManagementApi, management_api
from tests.support.server import serve

MAX_MESSAGE = 128 * 1024  # API Gateway's message quota, and the largest frame a server may send
MAX_FRAME = 32 * 1024  # API Gateway's frame quota (the local API Gateway enforces it)
MAX_ID = 128
CRASH_MESSAGE = "fuzz: the deliberately crashing action"
HUGE_RESULT = 140_000  # characters in the oversized action's result
FRAME_TYPES = frozenset({"result", "error", "event"})
WS_EVENT_TYPES = frozenset({"CONNECT", "MESSAGE", "DISCONNECT"})

# The counters that must all be zero; anything else a report holds is for information.
VIOLATIONS = (
    "exceptions",  # raised out of the Lambda handler
    "500s",  # statusCode >= 500, HTTP 500 on an upgrade, the gateway's "Internal server error"
    "unanswered",  # a call with a valid id and no frame carrying it
    "oversized_replies",  # a frame over 128 KB
    "tracebacks",  # log records with a traceback other than the crashing action's
    "duplicate_replies",  # more than one frame for one id
    "wrong_status",  # malformed event not 4xx, valid one not 200, message over 128 KB not 4xx
    "wrong_reply",  # crash / oversized result not answered with internal_error
    "noisy_rejects",  # a rejected event logging more than one WARNING+ line
    "crash_logs",  # a crash call without exactly one traceback
    "non_protocol_frames",  # a frame that is not a JSON object with a known "type"
    "bad_responses",  # the handler returned something that is not a response dict
    "wrong_close",  # the socket closed with another code than API Gateway's
    "missing_close",  # binary frame / message over 128 KB / frame over 32 KB left open
    "dropped_connections",  # a socket closed by the server for no reason in the contract
    "missing_disconnects",  # a connection accepted and never given $disconnect
)


# -- The app under test ----------------------------------------------------------------------


class Customer(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")


class Item(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}-\d{3}$")
    qty: int = Field(ge=1, le=100)
    tags: list[str] = Field(default_factory=list, max_length=5)


class OrderIn(BaseModel):
    customer: Customer
    items: list[Item] = Field(min_length=1)
    note: str | None = Field(default=None, max_length=200)


class OrderOut(BaseModel):
    customer: str
    total_qty: int
    skus: list[str]


class EchoIn(BaseModel):
    text: str = Field(max_length=1000)
    times: int = Field(default=1, ge=1, le=5)


class EchoOut(BaseModel):
    text: str


class AddIn(BaseModel):
    a: int
    b: int


class AddOut(BaseModel):
    total: int


class Pong(BaseModel):
    pong: bool


class Blob(BaseModel):
    data: str


class Hooks:
    """Counts on_connect / on_disconnect per connection id, from any thread."""

    def __init__(self) -> None:
        self.connected: set[str] = set()
        self.disconnected: set[str] = set()
        self.changed = threading.Condition()

    def connect(self, connection_id: str) -> None:
        with self.changed:
            self.connected.add(connection_id)
            self.changed.notify_all()

    def disconnect(self, connection_id: str) -> None:
        with self.changed:
            self.disconnected.add(connection_id)
            self.changed.notify_all()

    def missing(self, timeout: float = 0.0) -> set[str]:
        """Accepted connections without a $disconnect, after waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                left = self.connected - self.disconnected
                remaining = deadline - time.monotonic()
                if not left or remaining <= 0:
                    return left
                self.changed.wait(remaining)


ACTIONS = ("echo", "order.create", "math.add", "ping", "ack", "crash", "huge")


def build_app(ws: MangumWS, hooks: Hooks) -> FastAPI:
    """A few typed actions: nested models, lists, constraints, a sync one, a no-input one, one
    returning None, one that raises and one whose result is over 128 KB."""
    app = FastAPI()

    @ws.action("echo")
    async def echo(data: EchoIn) -> EchoOut:
        return EchoOut(text=data.text * data.times)

    @ws.action("order.create")
    async def order(data: OrderIn, conn: Connection) -> OrderOut:
        return OrderOut(
            customer=data.customer.name,
            total_qty=sum(item.qty for item in data.items),
            skus=[item.sku for item in data.items],
        )

    @ws.action("math.add")
    def add(data: AddIn) -> AddOut:  # sync: runs in a worker thread
        return AddOut(total=data.a + data.b)

    @ws.action("ping")
    async def ping() -> Pong:
        return Pong(pong=True)

    @ws.action("ack")
    async def ack(data: EchoIn) -> None:
        return None

    @ws.action("crash")
    async def crash() -> Pong:
        raise RuntimeError(CRASH_MESSAGE)

    @ws.action("huge")
    async def huge() -> Blob:
        return Blob(data="x" * HUGE_RESULT)

    @ws.on_connect
    async def connected(connection_id: str) -> None:
        hooks.connect(connection_id)

    @ws.on_disconnect
    async def disconnected(connection_id: str) -> None:
        hooks.disconnect(connection_id)

    app.include_router(ws.router)
    return app


# -- The oracle: what a message obliges the server to answer ---------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def is_clean(text: str) -> bool:
    """Encodable as UTF-8: no lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse(text: str) -> Any:
    """Strict JSON (no NaN / Infinity); raises ValueError for anything else, deep nesting too."""
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError as exc:
        raise ValueError("nesting too deep for this parser") from exc


def expected_id(text: str) -> str | None:
    """The id a reply must carry: a message of at most 128 KB that is a JSON object whose "id"
    is a clean string of at most 128 characters (actions starting with "$" are reserved)."""
    if utf8_size(text) > MAX_MESSAGE:
        return None
    try:
        message = parse(text)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    request_id = message.get("id")
    if not isinstance(request_id, str) or len(request_id) > MAX_ID or not is_clean(request_id):
        return None
    action = message.get("action")
    if isinstance(action, str) and action.startswith("$"):
        return None
    return request_id


def called_action(text: str) -> str | None:
    """The action a message names, when it parses (used to bound the crash log count)."""
    try:
        message = parse(text)
    except ValueError:
        return None
    if isinstance(message, dict) and isinstance(message.get("action"), str):
        return str(message["action"])
    return None


# -- Generators ------------------------------------------------------------------------------


class Body(NamedTuple):
    """One client message: ``text`` is sent as is (a binary frame when ``binary``)."""

    text: str
    kind: str
    binary: bool = False
    # The error code the reply must have ("internal_error" for crash / oversized result).
    expect_code: str | None = None

    def __repr__(self) -> str:  # hypothesis prints failing examples: keep 128 KB out of it
        return f"Body({self.kind}, {_short(self.text)!r}, binary={self.binary})"


_serial = itertools.count()
_ASCII = string.ascii_letters + string.digits + " _-.:/"
_WILD = "\"\\'\n\t\r\x00\x1f\x7f é中😀\u2028\ufeff<>{}[],"


def _char(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.7:
        return rng.choice(_ASCII)
    if roll < 0.85:
        return rng.choice(_WILD)
    while True:  # any code point but a surrogate
        cp = rng.randrange(0x20, 0x110000) if rng.random() < 0.3 else rng.randrange(0x80, 0x800)
        if not 0xD800 <= cp <= 0xDFFF:
            return chr(cp)


def text(rng: random.Random, low: int = 0, high: int = 30) -> str:
    return "".join(_char(rng) for _ in range(rng.randint(low, high)))


def new_id(rng: random.Random) -> str:
    """A fresh id (unique in this process), valid: a clean string of at most 128 characters."""
    # Fixed width: an id's length must not grow with the count, or the same draws give
    # another length (hypothesis then reports its strategy as flaky, e.g. in _gen_not_json).
    serial = f"#{next(_serial):08d}"
    style = rng.random()
    if style < 0.5:
        return f"c{serial}"
    if style < 0.8:
        return (text(rng, 0, 20) + serial)[-MAX_ID:]
    if style < 0.9:
        return ("😀" * MAX_ID + serial)[-MAX_ID:]  # exactly 128 characters, 4-byte ones
    return ("x" * MAX_ID + serial)[-MAX_ID:]


def json_value(rng: random.Random, depth: int = 3) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.5:
        return rng.choice(
            [
                None,
                True,
                False,
                rng.randint(-(2**63), 2**63),
                rng.random() * 1e6,
                text(rng),
                "",
                0,
                -1,
                1e308,
            ]
        )
    if roll < 0.75:
        return [json_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    return {text(rng, 0, 8): json_value(rng, depth - 1) for _ in range(rng.randint(0, 4))}


def valid_data(rng: random.Random, action: str) -> Any:
    if action in ("echo", "ack"):
        data: dict[str, Any] = {"text": text(rng, 0, 200)}
        if rng.random() < 0.5:
            data["times"] = rng.randint(1, 5)
        return data
    if action == "order.create":
        items = [
            {
                "sku": "".join(rng.choices(string.ascii_uppercase, k=3))
                + f"-{rng.randint(0, 999):03d}",
                "qty": rng.randint(1, 100),
                "tags": [text(rng, 0, 10) for _ in range(rng.randint(0, 5))],
            }
            for _ in range(rng.randint(1, 10))
        ]
        order: dict[str, Any] = {
            "customer": {"name": text(rng, 1, 40).strip() or "ann", "email": "ann@example.com"},
            "items": items,
        }
        if rng.random() < 0.3:
            order["note"] = text(rng, 0, 200)
        return order
    if action == "math.add":
        return {"a": rng.randint(-(2**53), 2**53), "b": rng.randint(-1000, 1000)}
    return json_value(rng) if rng.random() < 0.2 else {}  # no input: whatever comes is ignored


def invalid_data(rng: random.Random, action: str) -> Any:
    good = valid_data(rng, action)
    roll = rng.random()
    if roll < 0.2 or not isinstance(good, dict) or not good:
        return rng.choice([[], "data", 42, None, [good], True])
    if action == "order.create":
        return rng.choice(
            [
                {**good, "customer": {"name": "", "email": "not-an-email"}},
                {**good, "items": []},
                {**good, "items": [{"sku": "abc", "qty": 0}, {"sku": 1, "qty": "many"}]},
                {**good, "items": [{"sku": "ABC-123", "qty": 1, "tags": ["t"] * 6}]},
                {**good, "note": "n" * 201},
                {"customer": [good["customer"]]},
            ]
        )
    if action in ("echo", "ack"):
        return rng.choice(
            [{"text": "t" * 1001}, {"text": 5}, {"text": "x", "times": 0}, {"times": 6}, {}]
        )
    return rng.choice([{"a": "one", "b": 2}, {"a": 1.5, "b": []}, {"a": 1}, {"b": None}])


def call(action: Any, data: Any = None, request_id: Any = None, **extra: Any) -> str:
    message: dict[str, Any] = {"action": action}
    if request_id is not None:
        message["id"] = request_id
    if data is not None:
        message["data"] = data
    message.update(extra)
    return json.dumps(message, ensure_ascii=False)


def _maybe_id(rng: random.Random) -> str | None:
    return new_id(rng) if rng.random() < 0.9 else None


def padded_call(rng: random.Random, size: int) -> str:
    """A valid echo call of exactly ``size`` UTF-8 bytes (ASCII padding in an ignored field)."""
    head = call("echo", {"text": "pad"}, new_id(rng), pad="")
    return head[:-2] + "x" * max(0, size - utf8_size(head)) + head[-2:]


def _gen_valid(rng: random.Random) -> Body:
    action = rng.choice(("echo", "order.create", "math.add", "ping", "ack"))
    data = valid_data(rng, action) if action != "ping" or rng.random() < 0.3 else None
    return Body(call(action, data, _maybe_id(rng)), "valid")


def _gen_invalid_input(rng: random.Random) -> Body:
    action = rng.choice(("echo", "order.create", "math.add", "ack"))
    return Body(call(action, invalid_data(rng, action), _maybe_id(rng)), "invalid_input")


def _gen_invalid_list(rng: random.Random, request_id: str | None = None) -> Body:
    """~125 KB of invalid list items: tens of thousands of validation errors."""
    target = rng.randint(120_000, 130_000)
    item = rng.choice(['"xxx"', '{"a":1}', '{"sku":1}', '"1234"', "false"])
    customer = {"name": "a", "email": "a@b.co"}
    head = call("order.create", {"customer": customer, "items": []}, request_id or new_id(rng))
    count = min(25_000, max(1, (target - utf8_size(head)) // (len(item) + 2)))
    items = '"items": [' + ", ".join([item] * count) + "]"
    return Body(head.replace('"items": []', items), "big")


def _gen_unknown_action(rng: random.Random) -> Body:
    if rng.random() < 0.05:  # up to 130 KB of action name: some over the message limit
        name = "n" * rng.randint(60_000, 130_000)
    else:
        name = rng.choice([text(rng, 0, 40), "Echo", "echo ", "order", "ping.pong", ""])
    if name in ACTIONS or name.startswith("$"):
        name = "no-such-" + name
    return Body(call(name, json_value(rng), _maybe_id(rng)), "unknown_action")


def _gen_deep(rng: random.Random) -> Body:
    depth = rng.choice([967, 1000, rng.randint(2, 3000), 20_000, 60_000])
    roll = rng.random()
    if roll < 0.4:
        return Body("[" * depth + "]" * depth, "deep")
    if roll < 0.6:
        return Body('{"a":' * depth + "1" + "}" * depth, "deep")
    inner = "[" * min(depth, 900) + "]" * min(depth, 900)
    return Body(call("echo", "__DATA__", new_id(rng)).replace('"__DATA__"', inner), "deep_with_id")


def _gen_surrogates(rng: random.Random) -> Body:
    lone = rng.choice(["\\ud800", "\\udfff", "\\udbff\\u0041", "\\ude00x", "\\ud83d"])
    where = rng.random()
    if where < 0.3:
        return Body('{"action":"ping","id":"' + lone + '"}', "surrogate_id")
    if where < 0.5:
        return Body('{"action":"' + lone + '","id":' + json.dumps(new_id(rng)) + "}", "surrogate")
    rid = json.dumps(new_id(rng))
    if where < 0.8:
        return Body(
            '{"action":"echo","id":' + rid + ',"data":{"text":"a' + lone + 'b"}}', "surrogate"
        )
    return Body('{"action":"ping","id":' + rid + ',"data":{"' + lone + '":1}}', "surrogate")


def _gen_not_json(rng: random.Random) -> Body:
    good = call("echo", {"text": "hi"}, new_id(rng))
    return Body(
        rng.choice(
            [
                text(rng, 0, 200),
                good[: rng.randint(0, len(good) - 1)],
                good + "}",
                good.replace('"', "'"),
                "",
                " ",
                "\x00",
                '{"action": "ping", "id": "x", "data": NaN}',
                '{"action": "ping", "id": "x", "data": Infinity}',
                "{" + '"id": "x"',
                "\ufeff" + good,
                good.replace(":", "=", 1),
            ]
        ),
        "not_json",
    )


def _gen_non_object(rng: random.Random) -> Body:
    good = json.loads(call("ping", None, new_id(rng)))
    value = rng.choice([[good], "ping", 1, 1.5, None, True, [], [[], {}], json_value(rng)])
    return Body(json.dumps(value, ensure_ascii=False), "non_object")


def _gen_id_wrong_type(rng: random.Random) -> Body:
    bad = rng.choice([1, 0, -1, 1.5, True, False, [], ["c1"], {}, {"id": "c1"}])
    action = rng.choice(("ping", "echo", "crash", "no-such-action"))
    data = valid_data(rng, action) if action in ACTIONS else None
    message: dict[str, Any] = {"action": action, "id": bad}
    if data is not None:
        message["data"] = data
    return Body(json.dumps(message), "id_wrong_type")


def _gen_id_too_long(rng: random.Random) -> Body:
    long_id = new_id(rng) + "L" * rng.randint(MAX_ID + 1, 5000)
    return Body(call("ping", None, long_id), "id_too_long")


def _gen_oversized(rng: random.Random) -> Body:
    return Body(
        padded_call(rng, rng.choice([MAX_MESSAGE + 1, rng.randint(MAX_MESSAGE, 300_000)])),
        "oversized",
    )


def _gen_at_limit(rng: random.Random) -> Body:
    return Body(padded_call(rng, rng.choice([MAX_MESSAGE, MAX_MESSAGE - 1])), "at_limit")


def _gen_big_frame(rng: random.Random) -> Body:
    """Over one API Gateway frame (32 KB), within the message limit."""
    size = rng.choice([MAX_FRAME + 1, rng.randint(MAX_FRAME + 1, MAX_MESSAGE), 40_000])
    return Body(padded_call(rng, size), "big_frame")


def _gen_crash(rng: random.Random) -> Body:
    return Body(call("crash", None, _maybe_id(rng)), "crash", expect_code="internal_error")


def _gen_huge(rng: random.Random) -> Body:
    return Body(call("huge", None, _maybe_id(rng)), "huge_result", expect_code="internal_error")


def _gen_envelope(rng: random.Random) -> Body:
    rid = new_id(rng)
    return Body(
        rng.choice(
            [
                json.dumps({"id": rid}),
                json.dumps({"id": rid, "data": {}}),
                json.dumps({"action": None, "id": rid}),
                json.dumps({"action": 5, "id": rid}),
                json.dumps({"action": ["ping"], "id": rid}),
                json.dumps({"action": {"name": "ping"}, "id": rid}),
                json.dumps({"action": "ping", "id": rid, "data": None, "extra": [1]}),
                json.dumps({"action": "echo", "id": rid}),  # no data at all
                json.dumps({"ACTION": "ping", "id": rid}),
                json.dumps({}),
            ]
        ),
        "envelope",
    )


def _gen_keepalive(rng: random.Random) -> Body:
    return Body(json.dumps({"action": "$keepalive"}), "keepalive")


def _gen_mutated(rng: random.Random) -> Body:
    chars = list(_gen_valid(rng).text)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(chars) + 1)
        op = rng.random()
        if op < 0.33 and pos < len(chars):
            del chars[pos]
        elif op < 0.66:
            chars.insert(pos, _char(rng))
        elif pos < len(chars):
            chars[pos] = _char(rng)
    return Body("".join(chars), "mutated")


def _gen_random_object(rng: random.Random) -> Body:
    message = {text(rng, 0, 8): json_value(rng) for _ in range(rng.randint(0, 4))}
    if rng.random() < 0.6:
        message["action"] = rng.choice([*ACTIONS, text(rng, 0, 10), json_value(rng)])
    if rng.random() < 0.6:
        message["id"] = rng.choice([new_id(rng), json_value(rng, 1)])
    action = message.get("action")
    if isinstance(action, str) and action.startswith("$"):  # reserved names have rules of their own
        message["action"] = "x" + action
    return Body(json.dumps(message, ensure_ascii=False), "random_object")


def _gen_binary(rng: random.Random) -> Body:
    return Body(_gen_valid(rng).text, "binary", binary=True)


# (generator, weight). Bodies over 32 KB are rare: they cost the most and close sockets.
BODY_GENERATORS: list[tuple[Callable[[random.Random], Body], float]] = [
    (_gen_valid, 30),
    (_gen_invalid_input, 12),
    (_gen_invalid_list, 0.05),
    (_gen_unknown_action, 5),
    (_gen_deep, 3),
    (_gen_surrogates, 4),
    (_gen_not_json, 5),
    (_gen_non_object, 3),
    (_gen_id_wrong_type, 4),
    (_gen_id_too_long, 1),
    (_gen_oversized, 0.2),
    (_gen_at_limit, 0.2),
    (_gen_big_frame, 0.4),
    (_gen_crash, 3),
    (_gen_huge, 2),
    (_gen_envelope, 4),
    (_gen_keepalive, 1),
    (_gen_mutated, 5),
    (_gen_random_object, 5),
]
_BODY_FUNCS = [g for g, _ in BODY_GENERATORS]
_BODY_WEIGHTS = list(itertools.accumulate(w for _, w in BODY_GENERATORS))
SOCKET_GENERATORS = [*BODY_GENERATORS, (_gen_binary, 0.5)]
_SOCKET_FUNCS = [g for g, _ in SOCKET_GENERATORS]
_SOCKET_WEIGHTS = list(itertools.accumulate(w for _, w in SOCKET_GENERATORS))


def random_body(rng: random.Random) -> Body:
    """One message body, as a client might send it (never a binary frame)."""
    return rng.choices(_BODY_FUNCS, cum_weights=_BODY_WEIGHTS)[0](rng)


def random_frame(rng: random.Random) -> Body:
    """One socket frame: a body, or now and then a binary frame."""
    return rng.choices(_SOCKET_FUNCS, cum_weights=_SOCKET_WEIGHTS)[0](rng)


def table_bodies() -> list[Body]:
    """The rows of issue 11's table and the limits, one body each, for explicit tests."""
    rng = random.Random("table")
    return [
        Body(call("echo", {"text": "hi"}, "valid"), "valid"),
        Body("[" * 967 + "]" * 967, "deep"),
        Body(
            call("echo", "__D__", "deep-in-data").replace('"__D__"', "[" * 500 + "]" * 500),
            "deep_with_id",
        ),
        Body('{"action":"ping","id":"\\ud800"}', "surrogate_id"),
        Body('{"action":"echo","id":"surrogate-in-data","data":{"text":"\\udfff"}}', "surrogate"),
        _gen_invalid_list(rng, "big-invalid"),
        Body(call("n" * 120_000, None, "long-action"), "unknown_action"),
        Body(call("n" * 130_000, None, "too-long-action"), "unknown_action"),
        Body("this is not json", "not_json"),
        Body(call("ping", None, 5), "id_wrong_type"),
        Body(call("crash", None, "crash"), "crash", expect_code="internal_error"),
        Body(call("huge", None, "huge"), "huge_result", expect_code="internal_error"),
        Body(padded_call(rng, MAX_MESSAGE), "at_limit"),
        Body(padded_call(rng, MAX_MESSAGE + 1), "oversized"),
        Body(padded_call(rng, 40_000), "big_frame"),
        Body(call("ping", None, "binary"), "binary", binary=True),
    ]


# -- Lambda events ---------------------------------------------------------------------------


class LambdaCase(NamedTuple):
    event: dict[str, Any]
    kind: str  # "message:<body kind>", "connect", "disconnect", "garbage:<mutations>", "foreign"
    body: Body | None = None  # the body of a well-formed MESSAGE event

    def __repr__(self) -> str:
        return f"LambdaCase({self.kind}, {_short(self.event)})"


def connection_id(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + "+/"
    return "".join(rng.choices(alphabet, k=15)) + "="


_JUNK: list[Any] = [
    None,
    0,
    -1,
    1.5,
    True,
    False,
    "",
    "x",
    "\ud800",
    "ok\udfffok",
    [],
    [1, "a", None],
    ["MESSAGE"],
    {},
    {"a": None},
    {"a": {"b": [1, {"c": "\ud800"}]}},
    {"\ud800": "\udfff"},
    "A" * 5000,
    2**70,
    float("nan"),
    float("inf"),
    [[[["deep"]]]],
]


def junk(rng: random.Random) -> Any:
    value = rng.choice(_JUNK)
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value))  # a fresh copy: events are mutated in place
    return value


_MUTATIONS = (
    "headers",
    "multiValueHeaders",
    "query",
    "authorizer",
    "identity",
    "eventType",
    "connectionId",
    "routeKey",
    "body",
    "base64",
    "drop",
    "extra",
    "context_field",
    "top_field",
)


def _mutate(event: dict[str, Any], rng: random.Random, name: str) -> None:
    rc = event["requestContext"]
    if name == "headers":
        event["headers"] = rng.choice(
            [junk(rng), {"Host": junk(rng), "X": junk(rng)}, {"A": ["b"], "C": {"d": 1}}]
        )
    elif name == "multiValueHeaders":
        event["multiValueHeaders"] = rng.choice(
            [junk(rng), {"Host": junk(rng)}, {"A": "not-a-list"}, {"A": [1, None, ["x"]]}]
        )
    elif name == "query":
        key = rng.choice(["queryStringParameters", "multiValueQueryStringParameters"])
        event[key] = rng.choice([junk(rng), {"q": junk(rng)}, {"q": ["a", "b"]}, ["q=1"]])
    elif name == "authorizer":
        rc["authorizer"] = rng.choice([junk(rng), {"principalId": junk(rng), "tier": junk(rng)}])
    elif name == "identity":
        rc["identity"] = rng.choice([junk(rng), {"sourceIp": junk(rng), "userAgent": junk(rng)}])
    elif name == "eventType":
        rc["eventType"] = rng.choice(
            [junk(rng), ["MESSAGE"], "message", "CONNECT ", "CONNECTED", "MESSAGE\x00"]
        )
    elif name == "connectionId":
        rc["connectionId"] = rng.choice(
            [junk(rng), "", "\ud800", "abc\udfffdef=", "x" * 5000, "a/b", "../../x", "a b?c#d"]
        )
    elif name == "routeKey":
        rc["routeKey"] = rng.choice([junk(rng), "$connect", "$disconnect", "sendmessage", ""])
    elif name == "body":
        event["body"] = rng.choice(
            [
                junk(rng),
                {"action": "ping", "id": "c1"},
                ["ping"],
                1,
                '{"action":"ping","id":"\ud800"}',
            ]
        )
    elif name == "base64":
        event["isBase64Encoded"] = rng.choice([True, True, "true", 1, None, []])
        event["body"] = rng.choice(
            [
                "not base64!",
                "YQ",
                "====",
                "\ud800",
                base64.b64encode(call("ping", None, "c1").encode()).decode(),
                base64.b64encode(b"\xff\xfe\x00").decode(),
                event.get("body"),
            ]
        )
    elif name == "drop":
        target = rc if rng.random() < 0.6 else event
        keys = [k for k in target if not (target is event and k == "requestContext")]
        if keys:
            del target[rng.choice(keys)]
    elif name == "extra":
        (rc if rng.random() < 0.5 else event)[text(rng, 1, 10)] = junk(rng)
    elif name == "context_field":
        rc[rng.choice(list(rc))] = junk(rng)
    elif name == "top_field":
        keys = [k for k in event if k != "requestContext"]
        if keys:
            event[rng.choice(keys)] = junk(rng)


def definitely_malformed(event: dict[str, Any]) -> bool:
    """A WebSocket event (eventType CONNECT / MESSAGE / DISCONNECT) no API Gateway would send,
    in a way no lenient reading can fix: it must be answered with a 4xx."""
    rc = event.get("requestContext")
    if not isinstance(rc, dict):
        return False
    event_type = rc.get("eventType")
    if not isinstance(event_type, str) or event_type not in WS_EVENT_TYPES:
        return False
    cid = rc.get("connectionId")
    if not isinstance(cid, str) or not cid or not is_clean(cid):
        return True
    if rc["eventType"] != "MESSAGE" or "body" not in event or event["body"] is None:
        return False
    body = event["body"]
    if not isinstance(body, str):
        return True
    if event.get("isBase64Encoded") is True:
        try:
            base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return True
    return False


def _garbage_body(rng: random.Random) -> str:
    return rng.choice(
        [call("ping", None, "g1"), call("echo", {"text": "hi"}, "g2"), "", "not json", "{}"]
    )


def random_case(rng: random.Random) -> LambdaCase:
    """One Lambda event: mostly well-formed MESSAGE events, some CONNECT / DISCONNECT, a fifth
    WebSocket-shaped garbage, and a few dicts that are no API Gateway event at all."""
    roll = rng.random()
    cid = connection_id(rng)
    if roll < 0.72:
        body = random_body(rng)
        return LambdaCase(
            message_event(raw=body.text, connection_id=cid), f"message:{body.kind}", body
        )
    if roll < 0.76:
        query = {"token": text(rng, 0, 10)} if rng.random() < 0.5 else None
        authorizer = {"principalId": "u", "tier": 2} if rng.random() < 0.5 else None
        return LambdaCase(connect_event(cid, query=query, authorizer=authorizer), "connect")
    if roll < 0.79:
        return LambdaCase(
            disconnect_event(cid, status_code=rng.choice([1000, 1001, 1006])), "disconnect"
        )
    if roll < 0.99:
        shape = rng.choice(["connect", "message", "disconnect"])
        if shape == "connect":
            event = connect_event(cid, query={"q": "1"})
        elif shape == "message":
            event = message_event(raw=_garbage_body(rng), connection_id=cid)
        else:
            event = disconnect_event(cid)
        names = rng.sample(_MUTATIONS, rng.randint(1, 3))
        for name in names:
            _mutate(event, rng, name)
        return LambdaCase(event, "garbage:" + "+".join(sorted(names)))
    foreign: list[dict[str, Any]] = [
        {},
        {"requestContext": junk(rng)},
        {text(rng, 1, 5): junk(rng) for _ in range(3)},
        {"body": call("ping", None, "f1"), "isBase64Encoded": False},
    ]
    return LambdaCase(rng.choice(foreign), "foreign")


def is_websocket_shaped(event: dict[str, Any]) -> bool:
    """Has a requestContext dict that names an eventType or a connectionId: ws.handler's to
    answer. Anything else is left to Mangum (which raises when no handler claims an event)."""
    rc = event.get("requestContext")
    return isinstance(rc, dict) and ("eventType" in rc or "connectionId" in rc)


# -- Log capture -----------------------------------------------------------------------------


def is_crash(record: logging.LogRecord) -> bool:
    """A traceback of the deliberately crashing action (anywhere in the exception chain)."""
    exc = record.exc_info[1] if record.exc_info else None
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, RuntimeError) and str(exc) == CRASH_MESSAGE:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def has_traceback(record: logging.LogRecord) -> bool:
    return bool(record.exc_info and record.exc_info[0]) or (
        "Traceback (most recent call last)" in record.getMessage()
    )


class Capture(logging.Handler):
    """Every WARNING+ record of the process, on the root logger and on uvicorn's (which does not
    propagate)."""

    LOGGERS = ("", "uvicorn", "uvicorn.error")

    def __init__(self, ignore_thread: int | None = None) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.lock_ = threading.Lock()
        self.ignore_thread = ignore_thread

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.ignore_thread:
            return
        with self.lock_:
            if not any(r is record for r in self.records[-4:]):
                self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        with self.lock_:
            taken, self.records = self.records, []
        return taken

    def __enter__(self) -> Capture:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)


# -- Reports ---------------------------------------------------------------------------------


@dataclass
class Report:
    """What one path did: counters (VIOLATIONS must be zero), the kinds that hit each, and
    facts for information."""

    path: str
    sent: int = 0
    seconds: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    kinds: dict[str, Counter[str]] = field(default_factory=dict)
    info: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def hit(self, counter: str, kind: str, example: str = "", n: int = 1) -> None:
        if n <= 0:
            return
        self.counts[counter] += n
        self.kinds.setdefault(counter, Counter())[kind] += n
        shown = self.examples.setdefault(counter, [])
        if example and len(shown) < 3:
            shown.append(example[:300])

    def merge(self, other: Report) -> None:
        self.sent += other.sent
        self.seconds = max(self.seconds, other.seconds)
        self.counts.update(other.counts)
        self.info.update(other.info)
        for counter, kinds in other.kinds.items():
            self.kinds.setdefault(counter, Counter()).update(kinds)
        for counter, shown in other.examples.items():
            mine = self.examples.setdefault(counter, [])
            mine.extend(shown[: max(0, 3 - len(mine))])

    @property
    def violations(self) -> int:
        return sum(self.counts[name] for name in VIOLATIONS)

    def summary(self) -> str:
        lines = [f"{self.path}: sent {self.sent}, {self.seconds:.1f} s"]
        lines.append(
            "  "
            + ", ".join(
                f"{name} {self.counts[name]}"
                for name in ("exceptions", "500s", "unanswered", "oversized_replies", "tracebacks")
            )
        )
        others = [f"{n} {self.counts[n]}" for n in VIOLATIONS[5:] if self.counts[n]]
        if others:
            lines.append("  also: " + ", ".join(others))
        for name in VIOLATIONS:
            if self.counts[name]:
                top = ", ".join(f"{k} {v}" for k, v in self.kinds[name].most_common(6))
                lines.append(f"    {name} by kind: {top}")
                for example in self.examples.get(name, [])[:2]:
                    lines.append(f"      e.g. {example!r}")
        if self.info:
            lines.append("  info: " + ", ".join(f"{k} {v}" for k, v in sorted(self.info.items())))
        return "\n".join(lines)


def _short(value: Any) -> str:
    text_ = value if isinstance(value, str) else repr(value)
    return text_ if len(text_) <= 160 else f"{text_[:120]}... ({len(text_)} chars)"


def check_frames(
    report: Report, kind: str, body: Body | None, frames: list[str], rid: str | None
) -> None:
    """The frames one message produced: sizes, protocol shape, exactly one for its id."""
    carrying = 0
    for frame in frames:
        if utf8_size(frame) > MAX_MESSAGE:
            report.hit("oversized_replies", kind, f"{utf8_size(frame)} bytes: {_short(frame)}")
        try:
            parsed = parse(frame)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or parsed.get("type") not in FRAME_TYPES:
            report.hit("non_protocol_frames", kind, _short(frame))
            continue
        if rid is not None and parsed.get("id") == rid:
            carrying += 1
            if body is not None and body.expect_code is not None:
                error = parsed.get("error")
                code = error.get("code") if isinstance(error, dict) else None
                if parsed.get("type") != "error" or code != body.expect_code:
                    report.hit("wrong_reply", kind, _short(frame))
    if rid is not None:
        if carrying == 0:
            report.hit("unanswered", kind, _short(body.text if body else ""))
        elif carrying > 1:
            report.hit("duplicate_replies", kind, _short(body.text if body else ""))


# -- The Lambda path -------------------------------------------------------------------------


class LambdaPath:
    """``Mangum(app, custom_handlers=[ws.handler])`` replying as route responses or by posts to
    the management API stand-in."""

    def __init__(self, mgmt: ManagementApi, route_responses: bool) -> None:
        self.mgmt = mgmt
        self.route_responses = route_responses
        self.hooks = Hooks()
        self.ws = MangumWS(endpoint_url=mgmt.url, route_responses=route_responses)
        self.handler = Mangum(build_app(self.ws, self.hooks), custom_handlers=[self.ws.handler])
        self.context = FakeLambdaContext()

    @property
    def name(self) -> str:
        return "lambda (route responses)" if self.route_responses else "lambda (posted)"

    def _posts(self) -> dict[str, list[str]]:
        with self.mgmt.lock:
            posts, self.mgmt.posts[:] = list(self.mgmt.posts), []
        by_id: dict[str, list[str]] = {}
        for cid, data in posts:
            by_id.setdefault(cid, []).append(data.decode("utf-8", "replace"))
        return by_id

    def run(self, case: LambdaCase, report: Report, capture: Capture) -> None:
        """Send one event and check everything the contract says about it."""
        self._posts()
        capture.take()
        report.sent += 1
        kind = case.kind
        shaped = is_websocket_shaped(case.event)
        if not shaped:
            report.info["foreign events"] += 1
        try:
            response: Any = self.handler(case.event, self.context)
        except Exception as raised:
            if shaped:
                report.hit("exceptions", kind, f"{type(raised).__name__}: {raised}"[:300])
            else:
                report.info["foreign events raised (Mangum: no handler)"] += 1
            response = None
        records = capture.take()
        posts = self._posts()

        crash_logs = sum(1 for r in records if has_traceback(r) and is_crash(r))
        for record in records:
            if has_traceback(record) and not is_crash(record):
                exc = record.exc_info[1] if record.exc_info else None
                report.hit("tracebacks", kind, f"{record.getMessage()[:150]} ({exc!r:.120})")
        if response is None:
            return
        status = response.get("statusCode") if isinstance(response, dict) else None
        if not isinstance(status, int):
            report.hit("bad_responses", kind, _short(response))
            return
        report.info[f"status {status}"] += 1
        if status >= 500:
            report.hit("500s", kind, _short(case.event.get("body")))
        warnings = sum(1 for r in records if r.levelno >= logging.WARNING)

        body = case.body
        if body is None:  # connect, disconnect, garbage
            if kind in ("connect", "disconnect") and status != 200:
                report.hit("wrong_status", kind, f"{status}")
            if kind.startswith("garbage") and definitely_malformed(case.event):
                report.info["malformed events"] += 1
                if not 400 <= status < 500:
                    report.hit("wrong_status", kind, f"{status} for {_short(case.event)}")
            if kind.startswith("garbage") and not 200 <= status < 300 and warnings > 1:
                report.hit("noisy_rejects", kind, f"{warnings} records")
            return

        if utf8_size(body.text) > MAX_MESSAGE:  # API Gateway never delivers these
            if not 400 <= status < 500:
                report.hit("wrong_status", kind, f"{status} for {utf8_size(body.text)} bytes")
            if warnings > 1:
                report.hit("noisy_rejects", kind, f"{warnings} records")
        elif status != 200:
            report.hit("wrong_status", kind, f"{status} for {_short(body.text)}")
        cid = case.event["requestContext"]["connectionId"]
        frames = list(posts.get(cid, []))
        if self.route_responses and isinstance(response.get("body"), str) and response["body"]:
            frames.append(response["body"])
        if utf8_size(body.text) > MAX_MESSAGE and frames:
            report.hit(
                "wrong_reply", kind, f"a frame for a message of {utf8_size(body.text)} bytes"
            )
        rid = expected_id(body.text)
        check_frames(report, kind, body, frames, rid)
        if called_action(body.text) == "crash":
            report.info["crash calls"] += 1
            report.info["crash tracebacks (expected)"] += crash_logs
            answered_crash = body.kind == "crash" and rid is not None
            if crash_logs > 1 or (answered_crash and crash_logs != 1):
                report.hit("crash_logs", kind, f"{crash_logs} tracebacks")


def set_fake_aws_credentials() -> None:
    """Posts are SigV4-signed; these never leave 127.0.0.1 and no real credentials are read."""
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ.pop("AWS_PROFILE", None)


def run_lambda_shard(seed: str, count: int, route_responses: bool) -> Report:
    """``count`` events from ``random.Random(seed)`` through a fresh Lambda path (one process
    each in the benchmark: a Lambda handles one event at a time)."""
    set_fake_aws_credentials()
    rng = random.Random(seed)
    with management_api() as mgmt, Capture() as capture:
        path = LambdaPath(mgmt, route_responses)
        report = Report(path.name)
        started = time.perf_counter()
        for _ in range(count):
            path.run(random_case(rng), report, capture)
        report.seconds = time.perf_counter() - started
    return report


# -- The socket paths ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SocketPath:
    name: str
    url: str
    hooks: Hooks
    frame_limit: bool  # closes 1009 on one frame over 32 KB (the local API Gateway only)


@contextmanager
def mount_path() -> Iterator[SocketPath]:
    """``ws.mount(app)`` served by a real uvicorn."""
    hooks = Hooks()
    ws = MangumWS()
    app = build_app(ws, hooks)
    ws.mount(app)
    with serve(app) as address:
        yield SocketPath("mount", f"ws://{address}/", hooks, frame_limit=False)


@contextmanager
def local_gateway_path() -> Iterator[SocketPath]:
    """``LocalApiGateway`` in front of ``Mangum(app, custom_handlers=[ws.handler])``, the app
    posting its replies back through the gateway's management API."""
    set_fake_aws_credentials()
    hooks = Hooks()
    port = free_port()
    ws = MangumWS(endpoint_url=f"http://127.0.0.1:{port}")
    handler = Mangum(build_app(ws, hooks), custom_handlers=[ws.handler])
    with LocalApiGateway(handler, port=port) as gateway:
        yield SocketPath("local-api-gateway", gateway.ws_url, hooks, frame_limit=True)


@contextmanager
def socket_paths() -> Iterator[list[SocketPath]]:
    with ExitStack() as stack:
        yield [stack.enter_context(mount_path()), stack.enter_context(local_gateway_path())]


def expected_close(path: SocketPath, body: Body) -> int | None:
    if body.binary:
        return 1003
    size = utf8_size(body.text)
    if size > MAX_MESSAGE or (path.frame_limit and size > MAX_FRAME):
        return 1009
    return None


class _Pending(NamedTuple):
    kind: str
    body: Body


PROBE = Body(call("ping", None, "probe"), "probe")
_probe_rng = random.Random(0)


def _probe() -> Body:
    return PROBE._replace(text=call("ping", None, new_id(_probe_rng)))


class _Client:
    """One socket: a reader task matches frames to the ids waiting for them."""

    def __init__(self, conn: ClientConnection, report: Report, grace: float) -> None:
        self.conn = conn
        self.report = report
        self.grace = grace
        self.pending: dict[str, _Pending] = {}
        self.answered: dict[str, int] = {}
        self.expired: set[str] = set()
        self.sent_kinds: dict[Any, str] = {}
        self.reused: set[str] = set()
        self.arrived = asyncio.Event()
        self.closed = asyncio.Event()
        self.last_rx = time.monotonic()
        self.expecting_close: int | None = None
        self.last_kind = "?"
        self.crash_answered = 0
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.conn:
                self.last_rx = time.monotonic()
                self._on_frame(message)
                self.arrived.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self.arrived.set()
            if self.expecting_close is None:
                self.report.hit(
                    "dropped_connections",
                    self.last_kind,
                    f"closed {self.conn.close_code} {self.conn.close_reason!r}",
                )
                self._give_up()

    def _give_up(self) -> None:
        for rid, pending in self.pending.items():
            if pending.kind != "probe" or self.expecting_close is None:
                self.report.hit("unanswered", pending.kind, _short(pending.body.text))
            self.expired.add(rid)
        self.pending.clear()

    def _on_frame(self, message: str | bytes) -> None:
        report = self.report
        if isinstance(message, bytes):
            report.hit("non_protocol_frames", self.last_kind, f"binary {message[:100]!r}")
            return
        try:
            frame = parse(message)
        except ValueError:
            frame = None
        rid = frame.get("id") if isinstance(frame, dict) else None
        pending = self.pending.pop(rid, None) if isinstance(rid, str) else None
        # Blame the call the frame answers, else the last call sent with that id, else "(no id)".
        kind = pending.kind if pending is not None else self.sent_kinds.get(rid, "(no id)")
        if utf8_size(message) > MAX_MESSAGE:
            report.hit("oversized_replies", kind, f"{utf8_size(message)} bytes: {_short(message)}")
        if not isinstance(frame, dict) or frame.get("type") not in FRAME_TYPES:
            if "internal server error" in message.lower():
                report.hit("500s", kind, _short(message))
            else:
                report.hit("non_protocol_frames", kind, _short(message))
            return
        if not isinstance(rid, str):
            report.info["frames without id"] += 1
        elif rid in self.reused:
            report.info["replies to ids sent twice"] += 1
        elif pending is not None:
            self.answered[rid] = 1
            expect = pending.body.expect_code
            if expect is not None:
                error = frame.get("error")
                code = error.get("code") if isinstance(error, dict) else None
                if frame.get("type") != "error" or code != expect:
                    report.hit("wrong_reply", kind, _short(message))
            if pending.kind == "crash":
                self.crash_answered += 1
        elif rid in self.answered:
            report.hit("duplicate_replies", kind, _short(message))
        elif rid in self.expired:
            report.info["late replies"] += 1
        else:
            report.info["replies to ids not waited for"] += 1

    async def send(self, body: Body) -> bool:
        """Send one frame; False when the socket is already gone."""
        self.last_kind = body.kind
        rid = None if body.binary else expected_id(body.text)
        if not body.binary and '"id"' in body.text:
            with contextlib.suppress(ValueError):
                message = parse(body.text)
                if isinstance(message, dict) and isinstance(message.get("id"), str):
                    self.sent_kinds[message["id"]] = body.kind
        if rid is not None:
            if rid in self.pending or rid in self.answered or rid in self.reused:
                self.reused.add(rid)  # an id sent twice (hypothesis repeats some): unmatchable
                self.pending.pop(rid, None)
                rid = None
            else:
                self.pending[rid] = _Pending(body.kind, body)
        try:
            await self.conn.send(body.text.encode() if body.binary else body.text)
        except ConnectionClosed:
            if rid is not None:
                self.pending.pop(rid, None)
            return False
        return True

    async def settle(self, probe_timeout: float = 10.0) -> None:
        """Wait for every pending id: a probe call goes last; once it is answered, the others
        get ``grace`` seconds of silence before they count as unanswered."""
        if self.closed.is_set():
            return
        probe = _probe()
        if not await self.send(probe):
            return
        probe_id = expected_id(probe.text)
        deadline = time.monotonic() + probe_timeout
        while self.pending and not self.closed.is_set():
            now = time.monotonic()
            # The probe first; then quiet for ``grace`` since the last frame.
            wait = deadline - now if probe_id in self.pending else self.last_rx + self.grace - now
            if wait <= 0:
                break
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), wait)
        self._give_up()

    async def expect_close(self, body: Body, code: int, within: float = 5.0) -> None:
        """Send a frame the server must close on. Still open after a moment, a probe follows
        (not at once: writing to a socket the server already closed resets it, and the close
        frame is lost): the probe answered and the socket still open means no close."""
        await self.settle()
        if self.closed.is_set():
            return
        self.expecting_close = code
        await self.send(body)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 0.5)
        probe_id = None
        if not self.closed.is_set():
            probe = _probe()
            await self.send(probe)
            probe_id = expected_id(probe.text)
        deadline = time.monotonic() + within
        while not self.closed.is_set() and probe_id in self.pending:
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
        if not self.closed.is_set():
            self.report.hit("missing_close", body.kind, f"expected {code}: {_short(body.text)}")
            self.pending.pop(probe_id or "", None)
            await self.settle()
        else:
            got = self.conn.close_code
            self.report.info[f"closed {got}"] += 1
            if got != code:
                self.report.hit("wrong_close", body.kind, f"{got} instead of {code}")
            self.pending.clear()
        await self.close()

    async def close(self) -> None:
        self.expecting_close = self.expecting_close or 1000
        await self.conn.close()
        await self.reader


async def _open(path: SocketPath, report: Report, grace: float) -> _Client | None:
    try:
        conn = await connect(
            path.url, max_size=None, compression=None, ping_interval=None, open_timeout=10
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        report.hit("500s" if status >= 500 else "dropped_connections", "connect", f"{status}")
        return None
    report.info["connections"] += 1
    return _Client(conn, report, grace)


async def drive_socket(
    path: SocketPath,
    frames: Iterable[Body],
    report: Report,
    *,
    clients: int = 1,
    batch: int = 50,
    grace: float = 1.5,
) -> None:
    """Send ``frames`` through ``clients`` concurrent sockets, ``batch`` at a time each before
    settling, reconnecting after every close; count everything into ``report``."""
    source = iter(frames)
    crash_sent = 0
    crash_answered = 0

    async def worker() -> None:
        nonlocal crash_sent, crash_answered
        client: _Client | None = None
        in_batch = 0
        for body in source:
            if client is not None and client.closed.is_set():
                crash_answered += client.crash_answered
                client = None
            if client is None:
                client = await _open(path, report, grace)
                if client is None:
                    continue
                in_batch = 0
            report.sent += 1
            if not body.binary and called_action(body.text) == "crash":
                crash_sent += 1
            code = expected_close(path, body)
            if code is not None:
                await client.expect_close(body, code)
                crash_answered += client.crash_answered
                client = None
                continue
            await client.send(body)
            in_batch += 1
            if in_batch >= batch:
                await client.settle()
                in_batch = 0
        if client is not None:
            await client.settle()
            await client.close()
            crash_answered += client.crash_answered

    await asyncio.gather(*(worker() for _ in range(clients)))
    report.info["crash calls"] += crash_sent
    report.info["crash calls answered"] += crash_answered


def run_clients(coro: Coroutine[Any, Any, None]) -> None:
    """Run the clients on a loop of their own, leaving the thread's current loop alone (asyncio.run
    would replace it, and Mangum's, in a test, with it)."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def check_socket_logs(report: Report, records: list[logging.LogRecord]) -> None:
    """Tracebacks the servers logged while the clients ran (the clients' own are ignored)."""
    crash_logs = 0
    for record in records:
        if not has_traceback(record):
            continue
        if is_crash(record):
            crash_logs += 1
            continue
        exc = record.exc_info[1] if record.exc_info else None
        report.hit("tracebacks", record.name, f"{record.getMessage()[:150]} ({exc!r:.120})")
    report.info["crash tracebacks (expected)"] += crash_logs
    answered = report.info["crash calls answered"]
    sent = report.info["crash calls"]
    report.hit(
        "crash_logs", "crash", f"{crash_logs} for {answered} answered", answered - crash_logs
    )
    report.hit("crash_logs", "crash", f"{crash_logs} for {sent} calls", crash_logs - sent)


def check_disconnects(report: Report, hooks: Hooks, timeout: float = 10.0) -> None:
    missing = hooks.missing(timeout)
    report.info["on_connect"] = len(hooks.connected)
    report.info["on_disconnect"] = len(hooks.disconnected)
    report.hit("missing_disconnects", "connection", f"{len(missing)} ids", len(missing))
