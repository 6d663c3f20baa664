"""The chat demo as deployed: two Lambda instances that share nothing but DynamoDB (moto's server)
and the @connections endpoint (a stand-in on 127.0.0.1), each fed API Gateway events: rooms and
nicknames, and the assistant's streamed reply stopped from the other instance."""

from __future__ import annotations

import json
import time
from types import ModuleType
from typing import Any

import jwt
import pytest

from mangum_ws import DynamoDBStore
from tests.support.demo_auth import context, token
from tests.support.dynamodb import fresh_store
from tests.support.events import (
    FakeLambdaContext,
    authorizer_event,
    connect_event,
    disconnect_event,
    message_event,
)
from tests.support.loops import invoke_in_thread, run_on_mangums_loop
from tests.support.management_api import ManagementApi
from tests.support.modules import load_demo

ALICE, BOB, CAROL = "Alice000000000=", "Bob00000000000=", "Carol000000000="
# Who signed in on each connection (Carol's is alice's second device): the authorizer context
# API Gateway puts on every event of it.
SIGNED_IN = {ALICE: context("alice"), BOB: context("bob"), CAROL: context("alice")}


@pytest.fixture
def instances(
    monkeypatch: pytest.MonkeyPatch, mgmt_api: ManagementApi, moto_url: str
) -> tuple[ModuleType, ModuleType]:
    table = fresh_store(moto_url).table_name
    # What the SAM template from `python -m mangum_ws.deploy` puts in the function's environment;
    # boto3 reads the DynamoDB endpoint override from AWS_ENDPOINT_URL_DYNAMODB.
    monkeypatch.setenv("CONNECTIONS_TABLE", table)
    monkeypatch.setenv("APIGW_MANAGEMENT_URL", mgmt_api.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return load_demo("demochat_instance_a"), load_demo("demochat_instance_b")


def invoke(instance: ModuleType, event: dict[str, Any]) -> None:
    response = instance.handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200, response


def action(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"action": name, "id": "1", **({"data": data} if data is not None else {})}


def test_rooms_and_nicknames_span_lambda_instances(
    instances: tuple[ModuleType, ModuleType], mgmt_api: ManagementApi
) -> None:
    a, b = instances
    assert isinstance(a.ws.store, DynamoDBStore)
    assert a.ws.store is not b.ws.store  # nothing shared in memory

    def frames(cid: str) -> list[dict[str, Any]]:
        with mgmt_api.lock:
            return [json.loads(data) for posted, data in mgmt_api.posts if posted == cid]

    invoke(a, connect_event(ALICE, authorizer=SIGNED_IN[ALICE]))
    invoke(b, connect_event(BOB, authorizer=SIGNED_IN[BOB]))
    invoke(a, connect_event(CAROL, authorizer=SIGNED_IN[CAROL]))
    invoke(
        a, message_event(action("chat.join", {"room": "lobby"}), ALICE, authorizer=SIGNED_IN[ALICE])
    )
    invoke(b, message_event(action("chat.join", {"room": "lobby"}), BOB, authorizer=SIGNED_IN[BOB]))
    assert frames(BOB)[-1]["data"] == {"room": "lobby", "members": ["alice", "bob"]}
    assert frames(ALICE)[-1] == {
        "type": "event",
        "event": "chat.joined",
        "topic": a.topic("lobby"),
        "seq": 2,
        "data": {"room": "lobby", "nick": "bob", "members": ["alice", "bob"]},
    }

    # Carol's instance never saw alice join, and still knows the nickname is taken.
    invoke(
        a, message_event(action("chat.join", {"room": "lobby"}), CAROL, authorizer=SIGNED_IN[CAROL])
    )
    assert frames(CAROL)[-1]["error"]["code"] == "nick_taken"
    invoke(
        a, message_event(action("chat.send", {"text": "hi?"}), CAROL, authorizer=SIGNED_IN[CAROL])
    )
    assert frames(CAROL)[-1]["error"]["code"] == "not_joined"

    # Bob joined on instance b and speaks through instance a: a reads his seat from the store.
    invoke(
        a,
        message_event(
            action("chat.send", {"text": "hello from a"}), BOB, authorizer=SIGNED_IN[BOB]
        ),
    )
    for cid in (ALICE, BOB):
        pushed = [f for f in frames(cid) if f.get("event") == "chat.message"]
        assert [(f["data"]["nick"], f["data"]["text"]) for f in pushed] == [("bob", "hello from a")]
    assert not [f for f in frames(CAROL) if f.get("event") == "chat.message"]

    invoke(
        b, disconnect_event(ALICE, authorizer=SIGNED_IN[ALICE])
    )  # alice joined through a; b still knows her room
    assert frames(BOB)[-1] == {
        "type": "event",
        "event": "chat.left",
        "topic": a.topic("lobby"),
        "seq": 4,
        "data": {"room": "lobby", "nick": "alice", "members": ["bob"]},
    }
    store = b.ws.store
    assert run_on_mangums_loop(store.subscribers(a.topic("lobby"))) == {BOB}
    assert run_on_mangums_loop(store.get(ALICE)) is None


def test_a_stop_handled_by_the_other_instance_ends_the_streamed_reply(
    instances: tuple[ModuleType, ModuleType],
    mgmt_api: ManagementApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = instances
    monkeypatch.setattr(a, "WORD_DELAY", 0.1)  # the whole reply would take 8 s
    words = a.reply_words("hi")
    invoke(a, connect_event(ALICE, authorizer=SIGNED_IN[ALICE]))
    ask = message_event(action("assistant.reply", {"prompt": "hi"}), ALICE)
    streaming, answers = invoke_in_thread(a.handler, ask, FakeLambdaContext())
    deadline = time.monotonic() + 10
    while len(mgmt_api.received(ALICE)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    invoke(
        b, message_event({"action": "$cancel", "id": "1"}, ALICE, authorizer=SIGNED_IN[ALICE])
    )  # Stop, on instance b
    streaming.join(timeout=10)
    assert answers == [{"statusCode": 200}]

    frames: list[Any] = mgmt_api.received(ALICE)
    chunks = [f for f in frames if f["type"] == "chunk"]
    assert 2 <= len(chunks) < len(words)
    assert [(c["seq"], c["data"]["text"]) for c in chunks] == [
        (n, word if n == 0 else f" {word}") for n, word in enumerate(words[: len(chunks)])
    ]
    ended, cancelled = frames[len(chunks) :]  # nothing after: the generator stopped
    assert ended["event"] == "assistant.ended"
    assert ended["data"]["stopped"] is True  # a's finally ran
    assert ended["data"]["total"] == len(words)
    # The word being posted when the cancel struck may have gone out or not.
    assert len(chunks) <= ended["data"]["words"] <= len(chunks) + 1
    assert (cancelled["id"], cancelled["error"]["code"]) == ("1", "cancelled")


def test_the_demos_authorizer_admits_signed_tokens_only(
    instances: tuple[ModuleType, ModuleType],
) -> None:
    a, _ = instances
    allowed = a.handler(authorizer_event(query={"token": token("ann")}), FakeLambdaContext())
    assert allowed["principalId"] == "ann"
    assert allowed["context"] == {"role": "member"}
    assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    forged = jwt.encode({"sub": "ann", "role": "moderator", "exp": time.time() + 60}, "x" * 40)
    for bad in (forged, "not-a-jwt", ""):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            a.handler(authorizer_event(query={"token": bad}), FakeLambdaContext())


def test_only_a_moderator_may_kick(
    instances: tuple[ModuleType, ModuleType], mgmt_api: ManagementApi
) -> None:
    a, b = instances
    moderator = context("mod", "moderator")
    invoke(a, connect_event(ALICE, authorizer=SIGNED_IN[ALICE]))
    invoke(b, connect_event(CAROL, authorizer=moderator))
    invoke(
        a, message_event(action("chat.join", {"room": "lobby"}), ALICE, authorizer=SIGNED_IN[ALICE])
    )
    invoke(b, message_event(action("chat.join", {"room": "lobby"}), CAROL, authorizer=moderator))
    kick = action("chat.kick", {"nick": "mod"})
    invoke(a, message_event(kick, ALICE, authorizer=SIGNED_IN[ALICE]))
    refused: Any = mgmt_api.received(ALICE)[-1]
    assert refused["error"] == {
        "code": "forbidden",
        "message": "only a moderator may do this",
        "details": None,
    }
    invoke(a, message_event(action("chat.kick", {"nick": "alice"}), CAROL, authorizer=moderator))
    kicked: Any = mgmt_api.received(CAROL)[-1]
    assert kicked["data"] == {"nick": "alice", "room": "lobby"}
    assert mgmt_api.deletes == [ALICE]
