"""A model zoo: every shape a user can write, registered on one MangumWS for codegen tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from mangum_ws import ActionError, Connection, ConnectRequest, MangumWS, Principal
from tests import codegen_zoo_other


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Item(BaseModel):
    name: str
    price: Decimal


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    good: bool


class TreeNode(BaseModel):
    value: int
    children: list[TreeNode] = []


class Everything(BaseModel):
    """A bit of everything."""

    model_config = ConfigDict(populate_by_name=True)

    required_text: str
    optional_text: str | None = None
    nullable_required: int | None
    defaulted: int = 3
    aliased: str = Field(default="x", alias="aliasedName")
    literal: Literal["a", "b", 3]
    color: Color
    priority: Priority = Priority.LOW
    union: int | str
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]
    tree: TreeNode
    items: list[Item]
    other_items: list[codegen_zoo_other.Item] = []
    pair: tuple[int, str]
    var_tuple: tuple[int, ...] = ()
    mapping: dict[str, float] = {}
    when: dt.datetime
    day: dt.date | None = None
    ident: uuid.UUID
    amount: Decimal = Decimal("0")
    anything: Any = None


class EchoIn(BaseModel):
    text: str = Field(max_length=50)
    delay: float = 0


class EchoOut(BaseModel):
    text: str
    count: int = 1


class Tick(BaseModel):
    n: int


ws = MangumWS()


def app() -> FastAPI:
    """The zoo served by ws.mount (its @ws.authorizer puts the query's token in the context)."""
    served = FastAPI()
    ws.mount(served)
    return served


tick = ws.event("tick", Tick)
ws.event("everything.changed", Everything)


@ws.action("zoo.everything")
async def everything(data: Everything) -> Everything:
    """Round-trips every shape."""
    return data


@ws.action("zoo.echo")
async def echo(data: EchoIn) -> EchoOut:
    if data.delay:
        await asyncio.sleep(data.delay)
    return EchoOut(text=data.text)


@ws.action("zoo.fail")
async def fail(data: EchoIn) -> None:
    raise ActionError("zoo_failed", f"failed: {data.text}", details={"text": data.text})


@ws.action("zoo.tick")
async def send_tick(conn: Connection) -> None:
    await tick.emit(Tick(n=1), connection_ids={conn.connection_id})


@ws.action("zoo.drop")
async def drop(conn: Connection) -> None:
    """The server closes this socket: clients must reconnect."""
    await ws.disconnect(conn.connection_id)


@ws.authorizer()
def sign_in(request: ConnectRequest) -> Principal:
    """Everyone is welcome; the query's token, when there is one, rides on every event."""
    token = request.query.get("token")
    return Principal("zoo", {"token": token} if token else {})


class WhoAmI(BaseModel):
    token: str | None


@ws.action("zoo.whoami")
async def whoami(conn: Connection) -> WhoAmI:
    """The authorizer context of this connection (locally: the query's token)."""
    return WhoAmI(token=conn.authorizer.get("token"))


@ws.action("zoo.list", output=list[Literal["x", "y"]])
async def listing() -> Any:
    return ["x", "y"]


@ws.action("zoo.other")
async def other(data: codegen_zoo_other.Item) -> codegen_zoo_other.Item:
    return data


@ws.action("zoo.ping")
def ping() -> None:
    return None


class CountIn(BaseModel):
    upto: int = Field(ge=0, le=10_000)
    delay: float = 0
    fail_at: int | None = None
    tag: str = ""


class Token(BaseModel):
    index: int
    text: str


# Tags of the zoo.count streams whose generator has finished, however it ended.
finished: set[str] = set()


@ws.action("zoo.count")
async def count(data: CountIn) -> AsyncIterator[Token]:
    """Yields tokens 0 .. upto-1; fails at fail_at."""
    try:
        for index in range(data.upto):
            if index == data.fail_at:
                raise ActionError("zoo_failed", f"failed at {index}", details={"index": index})
            if data.delay:
                await asyncio.sleep(data.delay)
            yield Token(index=index, text=f"t{index}")
    finally:
        finished.add(data.tag)


class Tag(BaseModel):
    tag: str


@ws.action("zoo.finished")
async def has_finished(data: Tag) -> bool:
    """Whether the zoo.count stream tagged so has run its finally (a cancel reached it)."""
    return data.tag in finished


class Named(BaseModel):
    """Patterns with Unicode classes: the schema must read them as Pydantic does."""

    name: str = Field(pattern=r"^[\w .-]+$")
    code: str = Field(default="0", pattern=r"^\d+$")
    word: str = Field(default="a", pattern=r"^\w+\s?\S*$")


@ws.action("zoo.named")
async def named(data: Named) -> Named:
    return data


@ws.action("zoo.letters")
async def letters() -> AsyncIterator[str]:
    for letter in "abc":
        yield letter


# Payloads Pydantic accepts, for each model: the schema must accept them too.
CORPUS: dict[type[BaseModel], list[dict[str, Any]]] = {
    Everything: [
        {
            "required_text": "r",
            "nullable_required": None,
            "literal": "a",
            "color": "red",
            "union": 1,
            "pet": {"kind": "cat"},
            "tree": {"value": 1},
            "items": [{"name": "n", "price": "1.50"}],
            "pair": [1, "x"],
            "when": "2026-11-25T03:18:32Z",
            "ident": "12345678-1234-5678-1234-567812345678",
        },
        {
            "required_text": "r",
            "optional_text": "o",
            "nullable_required": 5,
            "defaulted": 7,
            "aliasedName": "al",
            "literal": 3,
            "color": "green",
            "priority": 2,
            "union": "s",
            "pet": {"kind": "dog", "good": True},
            "tree": {"value": 1, "children": [{"value": 2, "children": [{"value": 3}]}]},
            "items": [],
            "other_items": [{"sku": "s1"}, {"sku": "s2", "quantity": 4}],
            "pair": [0, ""],
            "var_tuple": [1, 2, 3],
            "mapping": {"a": 1.5, "b": 2},
            "when": "2026-11-25T03:18:32.123+01:00",
            "day": "2026-11-25",
            "ident": "12345678123456781234567812345678",
            "amount": 12.5,
            "anything": {"nested": [1, "two", None]},
        },
    ],
    EchoIn: [{"text": "hi"}, {"text": "", "delay": 0.5}],
    codegen_zoo_other.Item: [{"sku": "a"}, {"sku": "b", "quantity": 0}],
    TreeNode: [{"value": 0}, {"value": 1, "children": [{"value": 2}]}],
}
