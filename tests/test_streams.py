"""Streaming actions on every path: chunks in order with their seq, the end, errors mid-stream,
and $cancel (the generator's finally runs) — through ws.mount, through the local API Gateway in
front of the Lambda handler, and on Lambda across two instances that share only DynamoDB."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel
from websockets.sync.client import ClientConnection, connect

from mangum_ws import ActionError, ConnectionStore, MangumWS, RegistrationError
from mangum_ws.local import LocalApiGateway
from tests.support.dynamodb import fresh_store
from tests.support.events import FakeLambdaContext, connect_event, message_event
from tests.support.loops import invoke_in_thread
from tests.support.management_api import ManagementApi
from tests.support.messages import call
from tests.support.server import free_port, serve


class CountIn(BaseModel):
    upto: int
    delay: float = 0.0


class Tick(BaseModel):
    n: int
    text: str


class Finished(BaseModel):
    names: list[str]


def stream_app(ws: MangumWS, finished: list[str]) -> FastAPI:
    app = FastAPI()

    @ws.action("count")
    async def count(data: CountIn) -> AsyncIterator[Tick]:
        try:
            for n in range(data.upto):
                if data.delay:
                    await asyncio.sleep(data.delay)
                yield Tick(n=n, text=f"tick {n}")
        finally:
            finished.append("count")

    @ws.action("forever")
    async def forever() -> AsyncIterator[Tick]:
        try:
            yield Tick(n=0, text="first")
            await asyncio.sleep(3600)
            yield Tick(n=1, text="never")
        finally:
            await asyncio.sleep(0)  # a finally that awaits still runs to its end
            finished.append("forever")

    @ws.action("crash")
    async def crash() -> AsyncIterator[Tick]:
        yield Tick(n=0, text="ok")
        raise RuntimeError("boom mid-stream")

    @ws.action("refuse")
    async def refuse() -> AsyncIterator[Tick]:
        yield Tick(n=0, text="ok")
        raise ActionError("quota", "out of tokens", details={"left": 0})

    @ws.action("bad.chunk")
    async def bad_chunk() -> AsyncIterator[Tick]:
        yield Tick(n=0, text="ok")
        yield {"n": "not a number"}  # type: ignore[misc]
        finished.append("bad.chunk: never")

    @ws.action("finished")
    async def report() -> Finished:
        return Finished(names=list(finished))

    app.include_router(ws.router)
    return app


def frames_until_end(client: ClientConnection, stream_id: str) -> list[dict[str, Any]]:
    """Every frame of the stream ``stream_id``, up to the result or error that ends it."""
    got: list[dict[str, Any]] = []
    while True:
        frame = json.loads(client.recv(timeout=10))
        if frame.get("id") != stream_id:
            continue
        got.append(frame)
        if frame["type"] != "chunk":
            return got


@contextmanager
def mounted(
    finished: list[Any], build: Callable[[MangumWS, list[Any]], FastAPI] = stream_app
) -> Iterator[str]:
    """``build(ws, finished)``'s app on ws.mount, on a real uvicorn server."""
    ws = MangumWS()
    app = build(ws, finished)
    ws.mount(app)
    with serve(app) as address:
        yield f"ws://{address}/"


@contextmanager
def emulated(
    finished: list[Any],
    route_responses: bool = False,
    build: Callable[[MangumWS, list[Any]], FastAPI] = stream_app,
) -> Iterator[str]:
    """``build(ws, finished)``'s app behind the local API Gateway, as a Lambda handler."""
    port = free_port()
    ws = MangumWS(endpoint_url=f"http://127.0.0.1:{port}", route_responses=route_responses)
    handler = Mangum(build(ws, finished), custom_handlers=[ws.handler])
    # Two environments: on AWS a $cancel is another invocation, which must find one free.
    with LocalApiGateway(handler, port=port, concurrency=2) as gateway:
        yield gateway.ws_url


PATHS = ["ws.mount", "local API Gateway", "local API Gateway, route responses"]


@pytest.fixture(params=PATHS)
def url(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    finished: list[str] = []
    path: str = request.param
    server = mounted(finished) if path == "ws.mount" else emulated(finished, "route" in path)
    with server as address:
        yield address, finished


def test_chunks_come_in_order_then_the_result(url: tuple[str, list[str]]) -> None:
    address, finished = url
    with connect(address) as client:
        client.send(call("count", "s1", {"upto": 5}))
        frames = frames_until_end(client, "s1")
    assert frames == [
        *(
            {
                "type": "chunk",
                "id": "s1",
                "action": "count",
                "seq": n,
                "data": {"n": n, "text": f"tick {n}"},
            }
            for n in range(5)
        ),
        {"type": "result", "id": "s1", "action": "count", "data": None},
    ]
    assert finished == ["count"]


def test_two_streams_interleave_each_in_order(url: tuple[str, list[str]]) -> None:
    address, _ = url
    with connect(address) as client:
        client.send(call("count", "a", {"upto": 4, "delay": 0.01}))
        client.send(call("count", "b", {"upto": 4, "delay": 0.01}))
        seen: dict[str, list[int]] = {"a": [], "b": []}
        ended: set[str] = set()
        while ended != {"a", "b"}:
            frame = json.loads(client.recv(timeout=10))
            if frame["type"] == "chunk":
                seen[frame["id"]].append(frame["seq"])
            else:
                assert frame["type"] == "result"
                ended.add(frame["id"])
    assert seen == {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ("crash", {"code": "internal_error", "message": "internal error", "details": None}),
        ("refuse", {"code": "quota", "message": "out of tokens", "details": {"left": 0}}),
        ("bad.chunk", {"code": "internal_error", "message": "internal error", "details": None}),
    ],
)
def test_an_error_ends_the_stream_and_nothing_follows(
    url: tuple[str, list[str]], action: str, error: dict[str, Any]
) -> None:
    address, _ = url
    with connect(address) as client:
        client.send(call(action, "e"))
        frames = frames_until_end(client, "e")
        client.send(call("finished", "f"))
        after = frames_until_end(client, "f")
    assert [f["type"] for f in frames] == ["chunk", "error"]
    assert frames[-1] == {"type": "error", "id": "e", "action": action, "error": error}
    assert after[0]["data"]["names"] == []  # bad.chunk's generator never ran past the bad chunk


def test_cancel_stops_the_generator_and_its_finally_runs(url: tuple[str, list[str]]) -> None:
    address, _ = url
    with connect(address) as client:
        client.send(call("forever", "long"))
        first = json.loads(client.recv(timeout=10))
        assert first["type"] == "chunk"
        client.send(json.dumps({"action": "$cancel", "id": "long"}))
        assert frames_until_end(client, "long") == [
            {
                "type": "error",
                "id": "long",
                "action": "forever",
                "error": {"code": "cancelled", "message": "cancelled", "details": None},
            }
        ]
        client.send(call("finished", "f"))
        assert frames_until_end(client, "f")[0]["data"] == {"names": ["forever"]}
        # Cancelling again, or an id that never ran, is answered once, not an error loop.
        client.send(json.dumps({"action": "$cancel", "id": "long"}))
        answer = json.loads(client.recv(timeout=10))
    assert answer["type"] == "error"
    assert (answer["id"], answer["action"], answer["error"]["code"]) == (
        "long",
        "$cancel",
        "bad_request",
    )


def test_a_stream_needs_an_id(url: tuple[str, list[str]]) -> None:
    address, _ = url
    with connect(address) as client:
        client.send(call("count", data={"upto": 2}))
        frame = json.loads(client.recv(timeout=10))
    assert frame["type"] == "error"
    assert frame["error"]["code"] == "bad_request"
    assert frame["error"]["message"] == "'count' is a stream: call it with an 'id'"


# On Lambda: the cancel reaches another instance ------------------------------------------------


def lambda_instance(mgmt_api: ManagementApi, store: ConnectionStore, finished: list[str]) -> Mangum:
    ws = MangumWS(endpoint_url=mgmt_api.url, store=store)
    return Mangum(stream_app(ws, finished), custom_handlers=[ws.handler])


def test_on_lambda_a_cancel_in_another_instance_stops_the_stream_through_the_store(
    mgmt_api: ManagementApi, moto_url: str
) -> None:
    store = fresh_store(moto_url)
    finished: list[str] = []
    first = lambda_instance(mgmt_api, store, finished)
    second = lambda_instance(mgmt_api, fresh_store_view(store), finished)
    cid = "L0SM9cOFvHcCIhw="
    assert first(connect_event(cid), FakeLambdaContext())["statusCode"] == 200
    event = message_event({"action": "forever", "id": "s"}, cid)
    streaming, answers = invoke_in_thread(first, event, FakeLambdaContext())
    deadline = time.monotonic() + 10
    while not mgmt_api.received(cid) and time.monotonic() < deadline:
        time.sleep(0.01)
    cancelled_at = time.monotonic()
    answer = second(message_event({"action": "$cancel", "id": "s"}, cid), FakeLambdaContext())
    assert answer == {"statusCode": 200}  # the stream itself answers
    streaming.join(timeout=10)
    took = time.monotonic() - cancelled_at
    frames = mgmt_api.received(cid)
    assert [f["type"] for f in frames] == ["chunk", "error"]  # type: ignore[index]
    assert frames[-1]["error"]["code"] == "cancelled"  # type: ignore[index]
    assert finished == ["forever"]
    assert answers == [{"statusCode": 200}]
    assert took < 3  # polled every 0.5 s
    # Nothing of the stream is left in the store, and a late cancel is answered.
    late = second(message_event({"action": "$cancel", "id": "s"}, cid), FakeLambdaContext())
    assert late == {"statusCode": 200}
    assert mgmt_api.received(cid)[-1]["action"] == "$cancel"  # type: ignore[index]


def fresh_store_view(store: Any) -> Any:
    """A second DynamoDBStore object on the same table: what another Lambda instance builds."""
    from mangum_ws import DynamoDBStore

    return DynamoDBStore(store.table_name, endpoint_url=store.endpoint_url, region_name="us-east-1")


def test_registration_of_streams() -> None:
    ws = MangumWS()

    @ws.action("typed")
    async def typed() -> AsyncIterator[Tick]:
        yield Tick(n=0, text="")

    spec = ws.registry.actions["typed"]
    assert spec.stream
    assert spec.output_type is Tick

    with pytest.raises(RegistrationError, match="must annotate its return as AsyncIterator"):

        @ws.action("untyped")
        async def untyped():  # type: ignore[no-untyped-def]
            yield 1

    with pytest.raises(RegistrationError, match="a sync generator cannot be a stream"):

        @ws.action("sync")
        def sync() -> Iterator[Tick]:
            yield Tick(n=0, text="")


def test_running_streams_never_keep_a_cancel_from_being_read() -> None:
    from mangum_ws.socket_endpoint import MAX_IN_FLIGHT

    with mounted([]) as address, connect(address) as client:
        count = MAX_IN_FLIGHT * 2  # a running stream holds none of the connection's slots
        for n in range(count):
            client.send(call("forever", f"s{n}"))
        firsts = {json.loads(client.recv(timeout=10))["id"] for _ in range(count)}
        assert firsts == {f"s{n}" for n in range(count)}
        client.send(json.dumps({"action": "$cancel", "id": "s0"}))
        frame = json.loads(client.recv(timeout=10))
        assert (frame["id"], frame["error"]["code"]) == ("s0", "cancelled")
