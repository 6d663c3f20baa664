"""Background actions (``@ws.action(..., background=True)``) on every path: on Lambda, the MESSAGE
invocation answers at once and the action runs in an asynchronous invocation of the same
function that only ``ws.handler``'s own sealed payload can start; under ``ws.mount`` it runs as
a task; behind the local API Gateway, in a second invocation started through its Invoke API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel
from websockets.sync.client import connect

from mangum_ws import Connection, ConnectionStore, MangumWS
from mangum_ws.background import KEY_VARIABLE, PAYLOAD_KEY
from mangum_ws.local import LocalApiGateway
from tests.support.dynamodb import fresh_store
from tests.support.events import (
    FakeLambdaContext,
    connect_event,
    message_event,
    rest_api_event,
)
from tests.support.lambda_api import LambdaApi, lambda_api
from tests.support.loops import invoke_in_thread
from tests.support.management_api import ManagementApi
from tests.support.messages import call as stream_call
from tests.support.processes import Background, without_aws
from tests.support.server import free_port
from tests.test_streams import frames_until_end
from tests.test_streams import mounted as mounted_app

KEY = "k" * 40
CID = "L0SM9cOFvHcCIhw="


class SlowIn(BaseModel):
    text: str
    seconds: float = 0.0


class Done(BaseModel):
    text: str


class CountIn(BaseModel):
    upto: int
    delay: float = 0.0


class Tick(BaseModel):
    n: int


def background_app(ws: MangumWS, finished: list[str]) -> FastAPI:
    app = FastAPI()

    @ws.action("slow", background=True)
    async def slow(data: SlowIn, conn: Connection) -> Done:
        await asyncio.sleep(data.seconds)
        finished.append(f"slow {data.text}")
        return Done(text=f"{data.text.upper()} for {conn.connection_id}")

    @ws.action("ticks", background=True)
    async def ticks(data: CountIn) -> AsyncIterator[Tick]:
        finished.append("ticks started")
        try:
            for n in range(data.upto):
                await asyncio.sleep(data.delay)
                yield Tick(n=n)
        finally:
            await asyncio.sleep(0)  # a finally that awaits still runs to its end
            finished.append("ticks")

    @ws.action("crash", background=True)
    async def crash() -> Done:
        raise RuntimeError("boom in the background")

    @ws.action("quick")
    async def quick() -> Done:
        return Done(text="quick")

    app.include_router(ws.router)
    return app


def call(action: str, id: str | None = None, **data: Any) -> str:
    return stream_call(action, id, data)


def result(call_id: str, action: str, data: Any) -> dict[str, Any]:
    return {"type": "result", "id": call_id, "action": action, "data": data}


def cancelled(call_id: str, action: str) -> dict[str, Any]:
    error = {"code": "cancelled", "message": "cancelled", "details": None}
    return {"type": "error", "id": call_id, "action": action, "error": error}


def stream_then_cancel(url: str, finished: list[str]) -> None:
    """A background stream to its end, then one stopped by $cancel (its finally runs)."""
    with connect(url) as client:
        client.send(call("ticks", "a", upto=3))
        frames = frames_until_end(client, "a")
        assert [f["seq"] for f in frames[:-1]] == [0, 1, 2]
        assert frames[-1] == result("a", "ticks", None)
        client.send(call("ticks", "b", upto=1000, delay=0.05))
        assert json.loads(client.recv(timeout=10))["type"] == "chunk"
        client.send(json.dumps({"action": "$cancel", "id": "b"}))
        assert frames_until_end(client, "b")[-1] == cancelled("b", "ticks")
    deadline = time.monotonic() + 5
    while len(finished) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert finished == ["ticks started", "ticks", "ticks started", "ticks"]


# On Lambda: the events themselves, a stand-in Invoke API, the stand-in @connections API ---------


@pytest.fixture
def invoke_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaApi]:
    """The stand-in Lambda service, where boto3 finds it (AWS_ENDPOINT_URL_LAMBDA), and the
    function's key."""
    with lambda_api() as api:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", api.url)
        monkeypatch.setenv(KEY_VARIABLE, KEY)
        yield api


def lambda_function(
    mgmt_api: ManagementApi,
    finished: list[str],
    *,
    route_responses: bool = False,
    store: ConnectionStore | None = None,
) -> Mangum:
    ws = MangumWS(endpoint_url=mgmt_api.url, route_responses=route_responses, store=store)
    return Mangum(background_app(ws, finished), custom_handlers=[ws.handler])


def invoke(handler: Mangum, event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = handler(event, FakeLambdaContext())
    return answer


@pytest.mark.parametrize("route_responses", [False, True])
def test_on_lambda_the_message_answers_at_once_and_the_invocation_it_started_runs_the_action(
    mgmt_api: ManagementApi, invoke_api: LambdaApi, route_responses: bool
) -> None:
    finished: list[str] = []
    handler = lambda_function(mgmt_api, finished, route_responses=route_responses)
    answer = invoke(handler, message_event({"action": "slow", "id": "b1", "data": {"text": "hi"}}))
    assert answer == {"statusCode": 200}  # no body: no route response, nothing posted yet
    assert mgmt_api.received(CID) == []
    assert finished == []
    [invocation] = invoke_api.invocations
    assert invocation.function == FakeLambdaContext.invoked_function_arn
    assert invocation.invocation_type == "Event"
    assert set(invocation.payload) == {PAYLOAD_KEY, "mac"}

    # Lambda runs the payload: the action's reply is posted, whatever the route response mode.
    assert invoke(handler, invocation.payload) == {"statusCode": 200}
    assert finished == ["slow hi"]
    assert mgmt_api.received(CID) == [result("b1", "slow", {"text": f"HI for {CID}"})]


def test_on_lambda_invalid_input_is_answered_at_once_and_nothing_is_invoked(
    mgmt_api: ManagementApi, invoke_api: LambdaApi
) -> None:
    handler = lambda_function(mgmt_api, [], route_responses=True)
    answer = invoke(handler, message_event({"action": "slow", "id": "b1", "data": {}}))
    frame = json.loads(answer["body"])
    assert (frame["type"], frame["id"], frame["error"]["code"]) == ("error", "b1", "invalid_input")
    stream = invoke(handler, message_event({"action": "ticks", "data": {"upto": 1}}))
    assert json.loads(stream["body"])["error"]["code"] == "bad_request"  # a stream needs an id
    assert invoke_api.invocations == []


def test_on_lambda_a_crash_in_the_background_is_posted_as_internal_error(
    mgmt_api: ManagementApi, invoke_api: LambdaApi, caplog: pytest.LogCaptureFixture
) -> None:
    handler = lambda_function(mgmt_api, [])
    assert invoke(handler, message_event({"action": "crash", "id": "c"})) == {"statusCode": 200}
    with caplog.at_level(logging.ERROR, logger="mangum_ws"):
        assert invoke(handler, invoke_api.payloads()[0]) == {"statusCode": 200}
    [frame] = mgmt_api.received(CID)
    assert frame["error"]["code"] == "internal_error"  # type: ignore[index]
    assert "boom in the background" in caplog.text  # the traceback, on the server only


@pytest.mark.parametrize("failure", ["refused by Lambda", "no key"])
def test_on_lambda_an_invocation_that_cannot_start_is_internal_error_at_once(
    mgmt_api: ManagementApi,
    invoke_api: LambdaApi,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    if failure == "no key":
        monkeypatch.delenv(KEY_VARIABLE)
    else:
        invoke_api.status = 403
    handler = lambda_function(mgmt_api, [], route_responses=True)
    with caplog.at_level(logging.WARNING, logger="mangum_ws"):
        answer = invoke(handler, message_event({"action": "slow", "id": "b1", "data": {"x": 1}}))
        answer = invoke(
            handler, message_event({"action": "slow", "id": "b1", "data": {"text": ""}})
        )
    frame = json.loads(answer["body"])
    assert (frame["id"], frame["action"], frame["error"]["code"]) == (
        "b1",
        "slow",
        "internal_error",
    )
    [record] = [r for r in caplog.records if "not started" in r.message]
    assert record.message.startswith("background action 'slow' for connection L0SM9cOFvHcCIhw=")
    assert ("AccessDenied" if failure != "no key" else KEY_VARIABLE) in record.message
    assert record.exc_info is None  # one line


# Forged invocations -----------------------------------------------------------------------


def sealed_payload(mgmt_api: ManagementApi, invoke_api: LambdaApi) -> dict[str, Any]:
    handler = lambda_function(mgmt_api, [])
    invoke(handler, message_event({"action": "slow", "id": "b1", "data": {"text": "hi"}}))
    payload: dict[str, Any] = invoke_api.payloads()[-1]
    return payload


def tampered(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The payload with fields of its sealed text changed, and its MAC left as it was."""
    sealed = json.loads(payload[PAYLOAD_KEY])
    sealed.update(changes)
    return {**payload, PAYLOAD_KEY: json.dumps(sealed)}


def resealed(payload: dict[str, Any], key: str, **changes: Any) -> dict[str, Any]:
    """The payload with fields changed and sealed again with ``key``."""
    import hashlib
    import hmac

    text = tampered(payload, **changes)[PAYLOAD_KEY]
    return {
        PAYLOAD_KEY: text,
        "mac": hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest(),
    }


FORGERIES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "another connection": lambda p: tampered(
        p, event={**json.loads(p[PAYLOAD_KEY])["event"], "requestContext": {"connectionId": "X"}}
    ),
    "another action": lambda p: tampered(
        p, event={**json.loads(p[PAYLOAD_KEY])["event"], "body": '{"action": "quick"}'}
    ),
    "no MAC": lambda p: {PAYLOAD_KEY: p[PAYLOAD_KEY]},
    "a made-up MAC": lambda p: {**p, "mac": "0" * 64},
    "a MAC that is not text": lambda p: {**p, "mac": 12},
    "a MAC of non-ASCII": lambda p: {**p, "mac": "é" * 64},
    "sealed with another key": lambda p: resealed(p, "x" * 40, issued=int(time.time())),
    "an object, not sealed text": lambda p: {**p, PAYLOAD_KEY: json.loads(p[PAYLOAD_KEY])},
    "an extra field": lambda p: {**p, "requestContext": {"eventType": "MESSAGE"}},
    "for another function": lambda p: resealed(
        p, KEY, function="arn:aws:lambda:us-east-1:123456789012:function:other"
    ),
    "older than any connection": lambda p: resealed(p, KEY, issued=int(time.time()) - 3 * 3600),
    "from the future": lambda p: resealed(p, KEY, issued=int(time.time()) + 3600),
    "in another format": lambda p: resealed(p, KEY, v=2),
    "a lone surrogate": lambda p: {**p, PAYLOAD_KEY: "\ud800"},
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_background_invocation_is_refused_with_403_and_one_log_line(
    mgmt_api: ManagementApi,
    invoke_api: LambdaApi,
    caplog: pytest.LogCaptureFixture,
    forgery: str,
) -> None:
    payload = sealed_payload(mgmt_api, invoke_api)
    finished: list[str] = []
    handler = lambda_function(mgmt_api, finished)
    with caplog.at_level(logging.INFO, logger="mangum_ws"):
        answer = invoke(handler, FORGERIES[forgery](payload))
    assert answer == {"statusCode": 403, "body": "Forbidden"}
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.message.startswith("refused a background invocation (403): ")
    assert finished == []
    assert mgmt_api.received(CID) == []
    # The genuine payload still runs: what was refused was the forgery, not the function.
    assert invoke(handler, payload) == {"statusCode": 200}
    assert finished == ["slow hi"]


def test_without_its_key_the_function_refuses_even_a_genuine_payload(
    mgmt_api: ManagementApi,
    invoke_api: LambdaApi,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payload = sealed_payload(mgmt_api, invoke_api)
    monkeypatch.setenv(KEY_VARIABLE, "too short")
    with caplog.at_level(logging.WARNING, logger="mangum_ws"):
        answer = invoke(lambda_function(mgmt_api, []), payload)
    assert answer["statusCode"] == 403
    assert f"{KEY_VARIABLE} is not set" in caplog.text


def test_http_events_and_messages_that_imitate_the_payload_run_nothing(
    mgmt_api: ManagementApi, invoke_api: LambdaApi
) -> None:
    payload = sealed_payload(mgmt_api, invoke_api)
    finished: list[str] = []
    handler = lambda_function(mgmt_api, finished, route_responses=True)
    # An HTTP request to the internal path, or carrying the payload: the app's 404.
    for path in ("/internal/websocket/background", "/internal/websocket/background/x"):
        answer = invoke(handler, rest_api_event(path, body=json.dumps(payload)))
        assert answer["statusCode"] == 404
    # A WebSocket message whose body is the payload: an ordinary message with no action.
    answer = invoke(handler, message_event(payload))
    assert json.loads(answer["body"])["error"]["code"] == "bad_request"
    # A WebSocket event with the payload's field beside its own: refused as a forgery.
    event = {**message_event({"action": "slow", "id": "b", "data": {"text": "x"}}), **payload}
    assert invoke(handler, event)["statusCode"] == 403
    assert finished == []
    assert mgmt_api.received(CID) == []


# Background streams on Lambda: chunks posted, $cancel through the store ---------------------


def test_on_lambda_a_background_stream_posts_its_chunks_then_its_end(
    mgmt_api: ManagementApi, invoke_api: LambdaApi
) -> None:
    handler = lambda_function(mgmt_api, [], route_responses=True)
    answer = invoke(handler, message_event({"action": "ticks", "id": "t", "data": {"upto": 3}}))
    assert answer == {"statusCode": 200}
    assert invoke(handler, invoke_api.payloads()[0]) == {"statusCode": 200}
    assert mgmt_api.received(CID) == [
        *(
            {"type": "chunk", "id": "t", "action": "ticks", "seq": n, "data": {"n": n}}
            for n in range(3)
        ),
        result("t", "ticks", None),
    ]


def test_on_lambda_a_cancel_that_overtakes_the_launch_stops_the_stream_before_it_starts(
    mgmt_api: ManagementApi, invoke_api: LambdaApi, moto_url: str
) -> None:
    finished: list[str] = []
    handler = lambda_function(mgmt_api, finished, store=fresh_store(moto_url))
    assert invoke(handler, connect_event(CID))["statusCode"] == 200
    invoke(handler, message_event({"action": "ticks", "id": "t", "data": {"upto": 3}}))
    # The cancel reaches an instance before the background invocation does.
    assert invoke(handler, message_event({"action": "$cancel", "id": "t"})) == {"statusCode": 200}
    assert invoke(handler, invoke_api.payloads()[0]) == {"statusCode": 200}
    assert mgmt_api.received(CID) == [cancelled("t", "ticks")]
    assert finished == []  # the generator never ran


def test_on_lambda_a_cancel_in_another_instance_stops_a_running_background_stream(
    mgmt_api: ManagementApi, invoke_api: LambdaApi, moto_url: str
) -> None:
    store = fresh_store(moto_url)
    finished: list[str] = []
    first = lambda_function(mgmt_api, finished, store=store)
    second = lambda_function(mgmt_api, finished, store=store)
    assert invoke(first, connect_event(CID))["statusCode"] == 200
    invoke(
        first, message_event({"action": "ticks", "id": "t", "data": {"upto": 1000, "delay": 0.05}})
    )
    running, _ = invoke_in_thread(first, invoke_api.payloads()[0], FakeLambdaContext())
    deadline = time.monotonic() + 10
    while len(mgmt_api.received(CID)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert invoke(second, message_event({"action": "$cancel", "id": "t"})) == {"statusCode": 200}
    running.join(timeout=10)
    frames = mgmt_api.received(CID)
    assert {f["type"] for f in frames[:-1]} == {"chunk"}  # type: ignore[index]
    assert frames[-1] == cancelled("t", "ticks")
    assert finished == ["ticks started", "ticks"]


# ws.mount: a task of its own --------------------------------------------------------------


def mounted(finished: list[str]) -> contextlib.AbstractContextManager[str]:
    return mounted_app(finished, background_app)


def test_under_ws_mount_background_actions_do_not_hold_the_message_loop() -> None:
    from mangum_ws.socket_endpoint import MAX_IN_FLIGHT

    finished: list[str] = []
    with mounted(finished) as url, connect(url) as client:
        # More than the messages of a connection handled at once: none of them waits.
        for n in range(MAX_IN_FLIGHT + 4):
            client.send(call("slow", f"s{n}", text=str(n), seconds=0.5))
        client.send(call("quick", "q"))
        first = json.loads(client.recv(timeout=10))
        assert first == result("q", "quick", {"text": "quick"})
        done = {json.loads(client.recv(timeout=10))["id"] for _ in range(MAX_IN_FLIGHT + 4)}
    assert done == {f"s{n}" for n in range(MAX_IN_FLIGHT + 4)}


def test_under_ws_mount_a_background_stream_sends_chunks_and_stops_on_cancel() -> None:
    finished: list[str] = []
    with mounted(finished) as url:
        stream_then_cancel(url, finished)


def test_under_ws_mount_an_action_that_outlives_its_socket_ends_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished: list[str] = []
    with caplog.at_level(logging.WARNING, logger="mangum_ws"), mounted(finished) as url:
        with connect(url) as client:
            client.send(call("slow", "s", text="late", seconds=0.3))
        deadline = time.monotonic() + 5
        while not finished and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
    assert finished == ["slow late"]
    assert caplog.records == []


# The local API Gateway: a second invocation, through its Invoke API ---------------------------


class Timed:
    """The Lambda handler, noting when each invocation started and ended."""

    def __init__(self, handler: Mangum) -> None:
        self.handler = handler
        self.spans: list[tuple[str, float, float]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.monotonic()
        try:
            answer: dict[str, Any] = self.handler(event, context)
            return answer
        finally:
            kind = event.get("requestContext", {}).get("eventType", "BACKGROUND")
            self.spans.append((kind, started, time.monotonic()))


@contextmanager
def emulated(
    finished: list[str], monkeypatch: pytest.MonkeyPatch, concurrency: int = 1
) -> Iterator[tuple[str, Timed]]:
    port = free_port()
    # What the emulator's CLI sets for the function (lambda_environment).
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{port}")
    monkeypatch.setenv(KEY_VARIABLE, KEY)
    ws = MangumWS(endpoint_url=f"http://127.0.0.1:{port}")
    timed = Timed(Mangum(background_app(ws, finished), custom_handlers=[ws.handler]))
    with LocalApiGateway(timed, port=port, concurrency=concurrency) as gateway:
        yield gateway.ws_url, timed


def test_behind_the_local_api_gateway_the_message_invocation_returns_before_the_action_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finished: list[str] = []
    # One execution environment: the background invocation can only start once the MESSAGE
    # invocation has returned, so the result arriving at all proves it did not wait.
    with emulated(finished, monkeypatch, concurrency=1) as (url, timed), connect(url) as client:
        client.send(call("slow", "warm", text="boto3 imported, its client built"))
        assert json.loads(client.recv(timeout=10))["id"] == "warm"
        client.send(call("slow", "s", text="hi", seconds=1.0))
        frame = json.loads(client.recv(timeout=10))
    assert frame["type"] == "result"
    assert frame["data"]["text"].startswith("HI for ")
    [*_, (_, message_start, message_end)] = [s for s in timed.spans if s[0] == "MESSAGE"]
    [*_, (_, action_start, action_end)] = [s for s in timed.spans if s[0] == "BACKGROUND"]
    assert message_end - message_start < 0.5  # answered at once, not after the 1 s sleep
    assert action_start >= message_end  # started once the MESSAGE invocation had returned
    assert action_end - action_start >= 1.0


def test_behind_the_local_api_gateway_a_background_stream_sends_chunks_and_stops_on_cancel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finished: list[str] = []
    # Three environments: the stream's, and one each for the message and the cancel.
    with emulated(finished, monkeypatch, concurrency=3) as (url, _):
        stream_then_cancel(url, finished)


def test_the_local_api_gateways_invoke_api_refuses_forgeries_and_other_functions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    from botocore.exceptions import ClientError

    with (
        emulated([], monkeypatch),
        contextlib.closing(boto3.client("lambda", region_name="us-east-1")) as client,
    ):
        forged = {PAYLOAD_KEY: json.dumps({"v": 1}), "mac": "0" * 64}
        answer = client.invoke(FunctionName="mangum-ws-local", Payload=json.dumps(forged))
        assert answer["StatusCode"] == 200
        with contextlib.closing(answer["Payload"]) as payload:
            assert json.loads(payload.read()) == {"statusCode": 403, "body": "Forbidden"}
        with pytest.raises(ClientError) as info:
            client.invoke(FunctionName="someone-else", InvocationType="Event", Payload=b"{}")
        assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
        answer = client.invoke(
            FunctionName="arn:aws:lambda:us-east-1:123456789012:function:mangum-ws-local",
            InvocationType="Event",
            Payload=json.dumps(forged),
        )
        answer["Payload"].close()
        assert answer["StatusCode"] == 202


def test_registration_reads_background() -> None:
    ws = MangumWS()
    background_app(ws, [])
    actions = ws.registry.actions
    assert [name for name, spec in actions.items() if spec.background] == ["slow", "ticks", "crash"]
    assert actions["ticks"].stream
    assert not actions["quick"].background


APP = """
import asyncio, os
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel
from mangum_ws import MangumWS

class Done(BaseModel):
    text: str

app = FastAPI()
ws = MangumWS(endpoint_url=os.environ["APIGW_MANAGEMENT_URL"])

@ws.action("slow", background=True)
async def slow() -> Done:
    await asyncio.sleep(0.2)
    return Done(text="done in the background")

app.include_router(ws.router)
handler = Mangum(app, custom_handlers=[ws.handler])
"""


def test_the_emulators_command_line_gives_the_function_what_background_actions_need(
    tmp_path: Path,
) -> None:
    (tmp_path / "slowapp.py").write_text(APP)
    port = free_port()
    env = without_aws(tmp_path / "home", APIGW_MANAGEMENT_URL=f"http://127.0.0.1:{port}")
    env.pop(KEY_VARIABLE, None)
    argv = [sys.executable, "-m", "mangum_ws.local", "slowapp:handler", "--port", str(port)]
    emulator = Background([*argv, "--app-dir", str(tmp_path)], env=env, log=tmp_path / "log")
    try:
        emulator.first_line()
        with connect(f"ws://127.0.0.1:{port}/local") as client:
            client.send(call("slow", "s"))
            frame = json.loads(client.recv(timeout=10))
    finally:
        log = emulator.output()
    assert frame == result("s", "slow", {"text": "done in the background"}), log
    assert "AWS_ENDPOINT_URL_LAMBDA" in log
    assert KEY_VARIABLE in log
