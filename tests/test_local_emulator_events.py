"""The local API Gateway sends the Lambda the events API Gateway would: checked field by field."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from mangum_ws import Reject
from mangum_ws.local import LocalApiGateway

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Recorder:
    """A raw Lambda handler that records every event and answers as told."""

    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.answer = answer or (lambda event: {"statusCode": 200})
        self.changed = threading.Condition()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        with self.changed:
            self.events.append(event)
            self.contexts.append(context)
            self.changed.notify_all()
        return self.answer(event)

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 5) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = [e for e in self.events if e["requestContext"]["eventType"] == event_type]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {event_type} event after {timeout}s: {self.events}")
                self.changed.wait(left)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder: Recorder) -> Iterator[LocalApiGateway]:
    with LocalApiGateway(recorder, route_keys=frozenset({"sendmessage"})) as gw:
        yield gw


def test_connect_event(gateway: LocalApiGateway, recorder: Recorder) -> None:
    with connect(
        f"{gateway.ws_url}?token=abc&room=lobby&room=kitchen",
        additional_headers={"X-Custom": "yes"},
        user_agent_header="pytest-agent",
    ):
        (event,) = recorder.wait_for("CONNECT")
    assert event["queryStringParameters"] == {"token": "abc", "room": "kitchen"}
    assert event["multiValueQueryStringParameters"] == {
        "token": ["abc"],
        "room": ["lobby", "kitchen"],
    }
    assert event["headers"]["x-custom"] == "yes"
    assert event["multiValueHeaders"]["x-custom"] == ["yes"]
    assert "sec-websocket-key" in event["headers"]
    context = event["requestContext"]
    assert context["routeKey"] == "$connect"
    assert context["eventType"] == "CONNECT"
    assert context["messageDirection"] == "IN"
    assert context["stage"] == "local"
    assert context["identity"] == {"sourceIp": "127.0.0.1", "userAgent": "pytest-agent"}
    assert context["domainName"] == f"127.0.0.1:{gateway.port}"
    assert abs(context["connectedAt"] - time.time() * 1000) < 10_000
    assert context["requestTimeEpoch"] >= context["connectedAt"]
    assert re.fullmatch(r"\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000", context["requestTime"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{15}=", context["connectionId"])
    assert event["isBase64Encoded"] is False


def test_query_string_keys_are_absent_without_a_query(
    gateway: LocalApiGateway, recorder: Recorder
) -> None:
    with connect(gateway.ws_url):
        (event,) = recorder.wait_for("CONNECT")
    assert "queryStringParameters" not in event
    assert "multiValueQueryStringParameters" not in event


def test_connection_ids_are_unique(gateway: LocalApiGateway, recorder: Recorder) -> None:
    for _ in range(5):
        with connect(gateway.ws_url):
            pass
    events = recorder.wait_for("CONNECT", 5)
    assert len({e["requestContext"]["connectionId"] for e in events}) == 5


def test_message_event_and_route_selection(gateway: LocalApiGateway, recorder: Recorder) -> None:
    bodies = [
        '{"action": "sendmessage", "x": 1}',
        '{"action": "other"}',
        "not json",
        '["action"]',
        '{"action": 5}',
    ]
    with connect(gateway.ws_url) as client:
        for body in bodies:
            client.send(body)
        events = recorder.wait_for("MESSAGE", len(bodies))
    connect_id = recorder.wait_for("CONNECT")[0]["requestContext"]["connectionId"]
    by_body = {e["body"]: e for e in events}
    assert [by_body[b]["requestContext"]["routeKey"] for b in bodies] == [
        "sendmessage",
        "$default",
        "$default",
        "$default",
        "$default",
    ]
    event = by_body[bodies[0]]
    assert set(event) == {"requestContext", "body", "isBase64Encoded"}  # no headers on MESSAGE
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["eventType"] == "MESSAGE"
    assert context["connectionId"] == connect_id
    assert re.fullmatch(r"[A-Za-z0-9+/]{15}=", context["messageId"])
    assert len({e["requestContext"]["messageId"] for e in events}) == len(bodies)


def test_nested_route_selection_expression(recorder: Recorder) -> None:
    with (
        LocalApiGateway(
            recorder, route_selection="$request.body.meta.kind", route_keys=frozenset({"ping"})
        ) as gw,
        connect(gw.ws_url) as client,
    ):
        client.send('{"meta": {"kind": "ping"}}')
        client.send('{"meta": "ping"}')
        events = recorder.wait_for("MESSAGE", 2)
    assert sorted(e["requestContext"]["routeKey"] for e in events) == ["$default", "ping"]


def test_disconnect_on_client_close(gateway: LocalApiGateway, recorder: Recorder) -> None:
    with connect(gateway.ws_url) as client:
        client.close(code=4001, reason="bye now")
    (event,) = recorder.wait_for("DISCONNECT")
    context = event["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (4001, "bye now")
    assert context["routeKey"] == "$disconnect"
    assert "Host" in event["headers"]


def test_disconnect_on_idle_timeout(recorder: Recorder) -> None:
    with LocalApiGateway(recorder, idle_timeout=0.4) as gw, connect(gw.ws_url) as client:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as info:
            client.recv(timeout=5)
        assert 0.3 < time.monotonic() - started < 3
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1001
        (event,) = recorder.wait_for("DISCONNECT")
    context = event["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1001, "Going away")


def test_activity_resets_idle_but_not_max_age(recorder: Recorder) -> None:
    with (
        LocalApiGateway(recorder, idle_timeout=0.5, max_connection_age=1.2) as gw,
        connect(gw.ws_url) as client,
    ):
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):  # noqa: PT012
            for _ in range(40):  # activity every 0.1 s keeps idle away; age still ends it
                client.send("{}")
                time.sleep(0.1)
        assert 1.0 < time.monotonic() - started < 3.5
        (event,) = recorder.wait_for("DISCONNECT")
    assert event["requestContext"]["disconnectStatusCode"] == 1001


def test_authorizer_context_rides_on_every_later_event(recorder: Recorder) -> None:
    def authorizer(headers: dict[str, str], query: dict[str, str]) -> dict[str, Any] | None:
        if query.get("token") == "banned":
            raise Reject(403, "banned")
        return {"userId": query["token"], "tier": 2} if "token" in query else None

    with pytest.warns(DeprecationWarning, match="@ws.authorizer"):  # the old hook still works
        gateway = LocalApiGateway(recorder, authorizer=authorizer)
    with gateway as gw:
        for url, status in [(gw.ws_url, 401), (f"{gw.ws_url}?token=banned", 403)]:
            with pytest.raises(InvalidStatus) as info:
                connect(url).close()
            assert info.value.response.status_code == status
        assert recorder.events == []  # refused before the Lambda was ever invoked
        with connect(f"{gw.ws_url}?token=u1") as client:
            client.send("{}")
            recorder.wait_for("MESSAGE")
        recorder.wait_for("DISCONNECT")
    expected = {"principalId": "local", "userId": "u1", "tier": 2}
    assert [e["requestContext"]["authorizer"] for e in recorder.events] == [expected] * 3


@pytest.mark.parametrize("status", [401, 403, 429, 500])
def test_connect_refusal_by_status_code(status: int) -> None:
    recorder = Recorder(lambda event: {"statusCode": status, "body": "nope"})
    with LocalApiGateway(recorder) as gw:
        with pytest.raises(InvalidStatus) as info:
            connect(gw.ws_url).close()
        assert info.value.response.status_code == status
        assert gw.connections == {}


def test_a_crashing_connect_handler_refuses_with_500() -> None:
    def crash(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    with LocalApiGateway(crash) as gw, pytest.raises(InvalidStatus) as info:
        connect(gw.ws_url).close()
    assert info.value.response.status_code == 500


def test_subprotocol_is_echoed_from_the_connect_response() -> None:
    recorder = Recorder(
        lambda event: (
            {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "chat.v1"}}
            if event["requestContext"]["eventType"] == "CONNECT"
            else {"statusCode": 200}
        )
    )
    with (
        LocalApiGateway(recorder) as gw,
        connect(
            gw.ws_url,
            subprotocols=["chat.v1", "bearer.x"],  # type: ignore[list-item]
        ) as client,
    ):
        assert client.subprotocol == "chat.v1"
    assert recorder.events[0]["headers"]["sec-websocket-protocol"] == "chat.v1, bearer.x"


def test_route_responses_send_the_body_back() -> None:
    recorder = Recorder(lambda event: {"statusCode": 200, "body": f"echo:{event.get('body')}"})
    with LocalApiGateway(recorder, route_responses=True) as gw, connect(gw.ws_url) as client:
        client.send("hello")
        assert client.recv(timeout=5) == "echo:hello"
    with LocalApiGateway(recorder, route_responses=False) as gw, connect(gw.ws_url) as client:
        client.send("hello")
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.5)


def test_a_crashing_message_handler_yields_internal_server_error() -> None:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["requestContext"]["eventType"] == "MESSAGE":
            raise RuntimeError("boom")
        return {"statusCode": 200}

    with LocalApiGateway(handler) as gw, connect(gw.ws_url) as client:
        client.send("{}")
        frame = json.loads(client.recv(timeout=5))
        client.send("{}")  # the connection survives
        assert json.loads(client.recv(timeout=5))["message"] == "Internal server error"
    assert frame["message"] == "Internal server error"
    assert set(frame) == {"message", "connectionId", "requestId"}


def test_oversized_message_closes_1009(gateway: LocalApiGateway, recorder: Recorder) -> None:
    with connect(gateway.ws_url, max_size=None) as client:
        client.send("x" * (128 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as info:
            client.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009
    assert recorder.wait_for("DISCONNECT")[0]["requestContext"]["disconnectStatusCode"] == 1009
    assert not [e for e in recorder.events if e["requestContext"]["eventType"] == "MESSAGE"]


@pytest.mark.parametrize(
    ("frames", "closed"),
    [(["f" * 32_768], None), (["f" * 32_769], 1009), (["f" * 30_000] * 4, None)],
    ids=["32 KB frame", "32 KB + 1 frame", "120 KB in 4 frames"],
)
def test_frames_over_32_kb_close_1009(
    gateway: LocalApiGateway, recorder: Recorder, frames: list[str], closed: int | None
) -> None:
    with connect(gateway.ws_url, max_size=None) as client:
        client.send(frames[0] if len(frames) == 1 else iter(frames))
        if closed is None:
            (event,) = recorder.wait_for("MESSAGE")
            assert event["body"] == "".join(frames)
            return
        with pytest.raises(ConnectionClosed) as info:
            client.recv(timeout=5)
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (closed, "Frame too big")
    assert recorder.wait_for("DISCONNECT")[0]["requestContext"]["disconnectStatusCode"] == 1009
    assert not [e for e in recorder.events if e["requestContext"]["eventType"] == "MESSAGE"]


def test_a_socket_torn_down_without_a_close_frame_still_gets_disconnect(
    gateway: LocalApiGateway, recorder: Recorder
) -> None:
    with connect(gateway.ws_url) as client:
        recorder.wait_for("CONNECT")
        client.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection just ends
        event = recorder.wait_for("DISCONNECT")[0]
    assert event["requestContext"]["disconnectStatusCode"] == 1006
    assert not gateway.connections


def test_binary_frame_closes_1003(gateway: LocalApiGateway, recorder: Recorder) -> None:
    with connect(gateway.ws_url) as client:
        client.send(base64.b64decode("AAEC"))
        with pytest.raises(ConnectionClosed) as info:
            client.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1003
    event = recorder.wait_for("DISCONNECT")[0]
    assert event["requestContext"]["disconnectStatusCode"] == 1003


def test_one_invocation_at_a_time_unless_told_otherwise() -> None:
    for concurrency, expect_overlap in [(1, False), (3, True)]:
        running, peak, lock = [0], [0], threading.Lock()

        def slow(
            event: dict[str, Any],
            context: Any,
            running: list[int] = running,
            peak: list[int] = peak,
            lock: threading.Lock = lock,
        ) -> dict[str, Any]:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.15)
            with lock:
                running[0] -= 1
            return {"statusCode": 200}

        with LocalApiGateway(slow, concurrency=concurrency) as gw, connect(gw.ws_url) as client:
            for _ in range(3):
                client.send("{}")
            time.sleep(0.8)
        assert (peak[0] > 1) is expect_overlap, (concurrency, peak[0])


def test_lambda_context_has_the_usual_attributes(
    gateway: LocalApiGateway, recorder: Recorder
) -> None:
    with connect(gateway.ws_url):
        recorder.wait_for("CONNECT")
    context = recorder.contexts[0]
    for name in (
        "function_name",
        "function_version",
        "invoked_function_arn",
        "memory_limit_in_mb",
        "aws_request_id",
        "log_group_name",
        "log_stream_name",
    ):
        assert getattr(context, name), name
    assert 0 < context.get_remaining_time_in_millis() <= 30_000
    assert len({c.aws_request_id for c in recorder.contexts}) == len(recorder.contexts)
