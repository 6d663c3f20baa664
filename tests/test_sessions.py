"""$hello: sessions that survive reconnects, on every path (ws.mount, the local API Gateway,
Lambda events), with the memory store and DynamoDB on moto's server."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from mangum import Mangum
from websockets.sync.client import ClientConnection, connect

from mangum_ws import ConnectionStore, InMemoryStore, MangumWS
from mangum_ws.local import LocalApiGateway
from tests.support.dynamodb import fresh_store
from tests.support.events import FakeLambdaContext, connect_event, disconnect_event, message_event
from tests.support.loops import run_aside, run_on_mangums_loop
from tests.support.management_api import ManagementApi
from tests.support.messages import call
from tests.support.server import free_port, serve
from tests.support.sessions_app import feed_app, principal_from_query

PATHS = ["ws.mount", "emulator-posted", "emulator-route-responses"]


@contextmanager
def anonymous_allowed() -> Iterator[None]:
    """The deprecated ``authorizer=`` gives the anonymous principal (a context without
    principalId) that ``@ws.authorizer``'s Principal cannot: these tests need both kinds."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@contextmanager
def served(path: str, **options: Any) -> Iterator[tuple[str, MangumWS]]:
    if path == "ws.mount":
        ws = MangumWS(**options)
        app = feed_app(ws)
        with anonymous_allowed():
            ws.mount(app, authorizer=lambda conn: principal_from_query(conn.query))
        with serve(app) as address:
            yield f"ws://{address}/", ws
        return
    port = free_port()
    ws = MangumWS(
        endpoint_url=f"http://127.0.0.1:{port}",
        route_responses=path == "emulator-route-responses",
        **options,
    )
    handler = Mangum(feed_app(ws), custom_handlers=[ws.handler])
    with anonymous_allowed():
        gateway = LocalApiGateway(
            handler, port=port, authorizer=lambda headers, query: principal_from_query(query)
        )
    with gateway:
        yield gateway.ws_url, ws


class Peer:
    """One client speaking the protocol: ``ask`` returns the frames before its answer, and it."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.next_id = 0
        self.early: list[dict[str, Any]] = []

    def ask(self, action: str, data: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        self.next_id += 1
        request_id = f"r{self.next_id}"
        self.socket.send(call(action, request_id, data))
        before: list[dict[str, Any]] = []
        while True:
            frame = json.loads(self.socket.recv(timeout=10))
            if frame.get("id") == request_id and frame["type"] in {"result", "error"}:
                return before, frame
            before.append(frame)

    def hello(self, token: str | None = None, **fields: Any) -> dict[str, Any]:
        before, answer = self.ask("$hello", {"session": token, **fields})
        self.early += before
        return answer

    def events(self, count: int) -> list[dict[str, Any]]:
        got, self.early = self.early[:count], self.early[count:]
        while len(got) < count:
            got.append(json.loads(self.socket.recv(timeout=10)))
        return got


@contextmanager
def peer(url: str, who: str | None) -> Iterator[Peer]:
    with connect(f"{url}?who={who}" if who else url) as socket:
        yield Peer(socket)


def seqs(frames: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(f["seq"], f["data"]["n"]) for f in frames if f["type"] == "event"]


def resumed(token: str, replayed: int) -> dict[str, Any]:
    """The answer to a $hello that resumed a session, with nothing lost and no schema sent."""
    return {"session": token, "resumed": True, "replayed": replayed, "lost": [], "schema_ok": None}


def post(publisher: Peer, *numbers: int, topic: str = "t") -> None:
    for n in numbers:
        publisher.ask("feed.post", {"topic": topic, "n": n})


@pytest.mark.parametrize("path", PATHS)
def test_a_session_resumes_with_its_subscriptions_state_and_missed_events(path: str) -> None:
    with served(path) as (url, ws), peer(url, "bob") as publisher:
        with peer(url, "alice") as alice:
            hello = alice.hello(schema=ws.schema_hash)
            token = hello["data"]["session"]
            assert hello == {
                "type": "result",
                "id": "r1",
                "action": "$hello",
                "data": {
                    "session": token,
                    "resumed": False,
                    "replayed": 0,
                    "lost": [],
                    "schema_ok": True,
                },
            }
            assert len(base64.urlsafe_b64decode(token + "==")) * 8 >= 128
            alice.ask("feed.join", {"topic": "t"})
            alice.ask("me.set", {"name": "Al"})
            post(publisher, 1, 2)
            assert seqs(alice.events(2)) == [(1, 1), (2, 2)]
        post(publisher, 3, 4, 5)  # alice is away
        with peer(url, "alice") as again:
            before, answer = again.ask("$hello", {"session": token, "since": {"t": 2}})
            # What she missed comes first, in order, then the answer saying how many.
            assert seqs(before) == [(3, 3), (4, 4), (5, 5)]
            assert answer["data"] == resumed(token, replayed=3)
            assert again.ask("me.get")[1]["data"] == {"name": "Al"}
            post(publisher, 6)
            assert seqs(again.events(1)) == [(6, 6)]


@pytest.mark.parametrize("path", PATHS)
def test_a_connection_still_open_loses_the_session_to_the_one_that_resumes_it(
    path: str,
) -> None:
    with (
        served(path) as (url, _ws),
        peer(url, "bob") as publisher,
        peer(url, "alice") as first,
        peer(url, "alice") as second,
    ):
        token = first.hello()["data"]["session"]
        first.ask("feed.join", {"topic": "t"})
        first.ask("me.set", {"name": "Al"})
        post(publisher, 1)
        assert seqs(first.events(1)) == [(1, 1)]
        answer = second.hello(token, since={"t": 1})
        assert (answer["data"]["resumed"], answer["data"]["replayed"]) == (True, 0)
        post(publisher, 2)
        assert seqs(second.events(1)) == [(2, 2)]
        assert second.ask("me.get")[1]["data"] == {"name": "Al"}
        # The first connection has no subscription and no state left: the next frame it
        # gets is its own answer.
        before, answer = first.ask("me.get")
        assert (before, answer["data"]) == ([], {})


@pytest.mark.parametrize("path", PATHS)
def test_tokens_are_bound_to_their_principal(path: str, caplog: pytest.LogCaptureFixture) -> None:
    with served(path) as (url, _ws):
        with peer(url, "alice") as alice, peer(url, None) as anonymous:
            alices = alice.hello()["data"]["session"]
            anonymous_token = anonymous.hello()["data"]["session"]
        with peer(url, "mallory") as mallory, peer(url, None) as nobody, peer(url, "alice") as al:
            for client, token in ((mallory, alices), (nobody, alices), (al, anonymous_token)):
                refused = client.hello(token)
                assert refused["type"] == "error"
                assert refused["error"]["code"] == "unauthorized"
                assert token not in json.dumps(refused)
            # The refusal took nothing: alice still resumes hers.
            assert al.hello(alices)["data"]["resumed"] is True
    assert "presented a session token of another principal" in caplog.text


@pytest.mark.parametrize("path", PATHS)
def test_unknown_and_expired_tokens_start_a_new_session(path: str) -> None:
    with served(path) as (url, ws):
        with peer(url, "alice") as alice:
            token = alice.hello()["data"]["session"]
        record = run_aside(ws.store.get_session(token))
        assert record is not None
        expired = dataclasses.replace(record, expires_at=time.time() - 1)
        run_aside(ws.store.put_session(expired))
        with peer(url, "alice") as again:
            for presented in (token, "no-such-token", None):
                answer = again.hello(presented)["data"]
                assert answer["resumed"] is False
                assert answer["session"] not in {token, presented}


@pytest.mark.parametrize("path", PATHS)
def test_a_schema_mismatch_answers_false_and_logs_one_line(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with served(path) as (url, ws), peer(url, "alice") as alice:
        with caplog.at_level(logging.WARNING, logger="mangum_ws"):
            assert alice.hello(schema="0" * 32)["data"]["schema_ok"] is False
        assert alice.hello(schema=ws.schema_hash)["data"]["schema_ok"] is True
    lines = [r.getMessage() for r in caplog.records if "another schema" in r.getMessage()]
    assert len(lines) == 1
    assert ws.schema_hash in lines[0]


@pytest.mark.parametrize("path", PATHS)
def test_a_bad_hello_is_invalid_input_and_the_connection_lives_on(path: str) -> None:
    with served(path) as (url, _ws), peer(url, "alice") as alice:
        for data in ({"since": {"t": -1}}, {"session": 5}, "hello", {"session": "x" * 200}):
            _, answer = alice.ask("$hello", data)
            assert (answer["type"], answer["error"]["code"]) == ("error", "invalid_input")
        assert alice.hello()["data"]["resumed"] is False


@pytest.mark.parametrize("path", PATHS)
def test_a_gap_past_what_the_store_keeps_names_the_topic_as_lost(path: str) -> None:
    with served(path, topic_history=2) as (url, _ws), peer(url, "bob") as publisher:
        with peer(url, "alice") as alice:
            token = alice.hello()["data"]["session"]
            alice.ask("feed.join", {"topic": "t"})
            alice.ask("feed.join", {"topic": "u"})
            post(publisher, 1)
            assert seqs(alice.events(1)) == [(1, 1)]
        post(publisher, 2, 3, 4)  # only 3 and 4 are kept
        post(publisher, 1, topic="u")
        with peer(url, "alice") as again:
            before, answer = again.ask("$hello", {"session": token, "since": {"t": 1}})
            # u was never seen by this client: replayed from where it subscribed.
            assert [(f["topic"], f["seq"]) for f in before] == [("u", 1)]
            assert (answer["data"]["replayed"], answer["data"]["lost"]) == (1, ["t"])
            # A seq past the topic's head (a store that started over) is lost too.
            assert again.hello(token, since={"t": 99, "u": 1})["data"]["lost"] == ["t"]


@pytest.mark.parametrize("path", PATHS)
def test_a_client_that_never_says_hello_keeps_todays_behaviour(path: str) -> None:
    with served(path) as (url, _ws), peer(url, "bob") as publisher:
        with peer(url, "alice") as alice:
            alice.ask("feed.join", {"topic": "t"})
            post(publisher, 1)
            assert alice.events(1) == [
                {"type": "event", "event": "feed.item", "topic": "t", "seq": 1, "data": {"n": 1}}
            ]
        post(publisher, 2)
        with peer(url, "alice") as again:
            # Nothing moved to the new connection, nothing is replayed.
            post(publisher, 3)
            before, answer = again.ask("me.get")
            assert (before, answer["data"]) == ([], {})


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> ConnectionStore:
    if request.param == "memory":
        return InMemoryStore()
    return fresh_store(request.getfixturevalue("moto_url"))


def test_on_lambda_a_resume_moves_the_session_and_replays_before_the_answer(
    mgmt_api: ManagementApi, store: ConnectionStore
) -> None:
    ws = MangumWS(endpoint_url=mgmt_api.url, store=store, route_responses=True)
    handler = Mangum(feed_app(ws), custom_handlers=[ws.handler])
    context = FakeLambdaContext()
    alice = {"principalId": "alice"}
    old, new, bob = "Old0000000000A=", "New0000000000A=", "Bob0000000000B="

    def send(cid: str, action: str, data: Any = None, authorizer: Any = alice) -> Any:
        event = message_event(raw=call(action, "1", data), connection_id=cid, authorizer=authorizer)
        response = handler(event, context)
        assert response["statusCode"] == 200
        return json.loads(response["body"])

    for cid, who in ((old, alice), (bob, {"principalId": "bob"})):
        assert handler(connect_event(cid, authorizer=who), context)["statusCode"] == 200
    token = send(old, "$hello", {"session": None})["data"]["session"]
    send(old, "feed.join", {"topic": "t"})
    send(old, "me.set", {"name": "Al"})
    for n in (1, 2, 3):
        send(bob, "feed.post", {"topic": "t", "n": n}, {"principalId": "bob"})
    # The old connection drops: API Gateway's $disconnect parks the session in the store.
    assert handler(disconnect_event(old, authorizer=alice), context)["statusCode"] == 200
    assert run_on_mangums_loop(store.get(old)) is None
    send(bob, "feed.post", {"topic": "t", "n": 4}, {"principalId": "bob"})

    assert handler(connect_event(new, authorizer=alice), context)["statusCode"] == 200
    posted = len(mgmt_api.posts)
    answer = send(new, "$hello", {"session": token, "since": {"t": 1}})
    replays = [json.loads(data) for cid, data in mgmt_api.posts[posted:] if cid == new]
    assert seqs(replays) == [(2, 2), (3, 3), (4, 4)]
    assert answer["data"] == resumed(token, replayed=3)
    assert run_on_mangums_loop(store.subscribers("t")) == {new}
    assert send(new, "me.get")["data"] == {"name": "Al"}
    refused = send(bob, "$hello", {"session": token}, {"principalId": "bob"})
    assert refused["error"]["code"] == "unauthorized"


class FailsOnce(InMemoryStore):
    """The memory store, whose first session write after a move fails, as a throttled
    DynamoDB call past its retries would."""

    def __init__(self) -> None:
        super().__init__()
        self.armed = False

    async def put_session(self, record: Any, *, if_connection: str | None = None) -> bool:
        if self.armed:
            self.armed = False
            raise ConnectionError("the store is unreachable")
        return await super().put_session(record, if_connection=if_connection)


def test_a_hello_that_failed_half_way_resumes_in_full_when_retried(
    mgmt_api: ManagementApi,
) -> None:
    store = FailsOnce()
    ws = MangumWS(endpoint_url=mgmt_api.url, store=store, route_responses=True)
    handler = Mangum(feed_app(ws), custom_handlers=[ws.handler])
    context = FakeLambdaContext()
    old, new, bob = "Old0000000000A=", "New0000000000A=", "Bob0000000000B="

    def send(cid: str, action: str, data: Any = None) -> Any:
        event = message_event(raw=call(action, "1", data), connection_id=cid)
        return json.loads(handler(event, context)["body"])

    for cid in (old, new, bob):
        handler(connect_event(cid), context)
    token = send(old, "$hello")["data"]["session"]
    send(old, "feed.join", {"topic": "t"})
    handler(disconnect_event(old), context)
    send(bob, "feed.post", {"topic": "t", "n": 1})
    store.armed = True
    failed = send(new, "$hello", {"session": token})
    assert failed["error"]["code"] == "internal_error"
    # The subscription moved before the failure: the retry finds it there, and replays the gap.
    posted = len(mgmt_api.posts)
    answer = send(new, "$hello", {"session": token})
    assert answer["data"] == resumed(token, replayed=1)
    assert seqs([json.loads(data) for _cid, data in mgmt_api.posts[posted:]]) == [(1, 1)]
