"""@connections on the local API Gateway, through boto3 over real HTTP, and the chat demo on it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import ClientConnection, connect

from mangum_ws.local import LocalApiGateway
from tests.support.demo_auth import signed_in
from tests.support.loops import run_on_mangums_loop
from tests.support.modules import load_demo
from tests.test_local_emulator_events import Recorder


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def gateway(recorder: Recorder) -> Iterator[LocalApiGateway]:
    with LocalApiGateway(recorder) as gw:
        yield gw


def management(url: str) -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=url, region_name="us-east-1")


def connection_id(recorder: Recorder) -> str:
    return str(recorder.wait_for("CONNECT")[-1]["requestContext"]["connectionId"])


@pytest.mark.parametrize("with_stage", [False, True], ids=["root", "stage-path"])
def test_post_to_connection(gateway: LocalApiGateway, recorder: Recorder, with_stage: bool) -> None:
    client = management(f"{gateway.url}/local" if with_stage else gateway.url)
    with connect(gateway.ws_url) as socket:
        cid = connection_id(recorder)
        client.post_to_connection(ConnectionId=cid, Data=b'{"hello": "there"}')
        assert json.loads(socket.recv(timeout=5)) == {"hello": "there"}


def test_post_to_unknown_and_closed_ids_is_gone(
    gateway: LocalApiGateway, recorder: Recorder
) -> None:
    client = management(gateway.url)
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="NoSuchConnect0=", Data=b"x")
    with connect(gateway.ws_url):
        cid = connection_id(recorder)
    recorder.wait_for("DISCONNECT")
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=cid, Data=b"x")


def test_post_over_128_kb_is_413(gateway: LocalApiGateway, recorder: Recorder) -> None:
    client = management(gateway.url)
    with connect(gateway.ws_url):
        cid = connection_id(recorder)
        with pytest.raises(client.exceptions.PayloadTooLargeException):
            client.post_to_connection(ConnectionId=cid, Data=b"x" * (128 * 1024 + 1))
        client.post_to_connection(ConnectionId=cid, Data=b"x" * (128 * 1024))


def test_get_connection(gateway: LocalApiGateway, recorder: Recorder) -> None:
    client = management(gateway.url)
    with connect(gateway.ws_url, user_agent_header="agent/1.0") as socket:
        cid = connection_id(recorder)
        first = client.get_connection(ConnectionId=cid)
        time.sleep(0.05)
        socket.send("{}")
        recorder.wait_for("MESSAGE")
        second = client.get_connection(ConnectionId=cid)
    assert isinstance(first["ConnectedAt"], datetime)
    assert first["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "agent/1.0"}
    assert second["LastActiveAt"] > first["LastActiveAt"]
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=cid)


def test_delete_connection_closes_and_disconnect_follows(
    gateway: LocalApiGateway, recorder: Recorder
) -> None:
    client = management(gateway.url)
    with connect(gateway.ws_url) as socket:
        cid = connection_id(recorder)
        client.delete_connection(ConnectionId=cid)
        with pytest.raises(ConnectionClosedOK):
            socket.recv(timeout=5)
    context = recorder.wait_for("DISCONNECT")[0]["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (
        1000,
        "Connection Closed Normally",
    )
    with pytest.raises(client.exceptions.GoneException):
        client.delete_connection(ConnectionId=cid)


# The chat demo on the emulator: the production path end to end ------------------------------


def demo_sending_to(monkeypatch: pytest.MonkeyPatch, management_url: str) -> ModuleType:
    monkeypatch.setenv("APIGW_MANAGEMENT_URL", management_url)
    return load_demo("demochat_on_emulator")


class LateHandler:
    """The emulator needs a handler before its port (the demo's endpoint URL) is known."""

    def __init__(self) -> None:
        self.target: Any = None

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        return self.target(event, context)

    @property
    def custom_handlers(self) -> Any:  # where the emulator finds the MangumWS (its authorizer)
        return getattr(self.target, "custom_handlers", None)


def frames(client: ClientConnection, count: int) -> list[Any]:
    return [json.loads(client.recv(timeout=10)) for _ in range(count)]


@pytest.mark.parametrize("route_responses", [False, True], ids=["posted", "route-responses"])
def test_chat_demo_on_the_emulator(monkeypatch: pytest.MonkeyPatch, route_responses: bool) -> None:
    late = LateHandler()
    with LocalApiGateway(late, route_keys=frozenset(), route_responses=route_responses) as gw:
        demo = demo_sending_to(monkeypatch, gw.url)
        demo.ws.route_responses = route_responses
        late.target = demo.handler
        assert not demo.ws.is_local
        with (
            connect(signed_in(gw.ws_url, "alice")) as alice,
            connect(signed_in(gw.ws_url, "bob")) as bob,
        ):
            alice.send(json.dumps({"action": "chat.join", "id": "1", "data": {"room": "lobby"}}))
            assert frames(alice, 1)[0]["data"] == {"room": "lobby", "members": ["alice"]}
            bob.send(json.dumps({"action": "chat.join", "id": "1", "data": {"room": "lobby"}}))
            assert frames(bob, 1)[0]["data"]["members"] == ["alice", "bob"]
            assert frames(alice, 1)[0] == {
                "type": "event",
                "event": "chat.joined",
                "topic": demo.topic("lobby"),
                "seq": 2,
                "data": {"room": "lobby", "nick": "bob", "members": ["alice", "bob"]},
            }

            bob.send(json.dumps({"action": "chat.send", "id": "2", "data": {"text": "hi all"}}))
            got = frames(bob, 2)
            assert {f["type"] for f in got} == {"result", "event"}
            pushed = frames(alice, 1)[0]
            assert pushed["event"] == "chat.message"
            assert (pushed["data"]["nick"], pushed["data"]["text"]) == ("bob", "hi all")

            bob.send(json.dumps({"action": "chat.send", "id": "3", "data": {"text": ""}}))
            assert frames(bob, 1)[0]["error"]["code"] == "invalid_input"

        def lobby() -> set[str]:
            return run_on_mangums_loop(demo.ws.store.subscribers(demo.topic("lobby")))

        for _ in range(250):
            if not gw.connections and not lobby():
                break
            time.sleep(0.02)
        assert gw.connections == {}
        assert lobby() == set()  # $disconnect reached the demo through the Lambda path
