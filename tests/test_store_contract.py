"""One contract, run against every ConnectionStore: in memory, and DynamoDB on moto's server."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from mangum_ws import (
    ConnectionGone,
    ConnectionRecord,
    ConnectionStore,
    DynamoDBStore,
    InMemoryStore,
    MangumWS,
    StoreError,
)
from mangum_ws.store import SessionRecord, TopicHistory
from tests.support.dynamodb import fresh_store


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> ConnectionStore:
    if request.param == "memory":
        return InMemoryStore()
    return fresh_store(request.getfixturevalue("moto_url"))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_add_get_remove(store: ConnectionStore) -> None:
    record = ConnectionRecord(
        "c1=",
        source_ip="203.0.113.7",
        query={"room": "lobby"},
        authorizer={"principalId": "u1", "tier": 3, "admin": True},
    )
    run(store.add(record))
    got = run(store.get("c1="))
    assert got is not None
    assert (got.connection_id, got.source_ip, dict(got.query), dict(got.authorizer)) == (
        "c1=",
        "203.0.113.7",
        {"room": "lobby"},
        {"principalId": "u1", "tier": 3, "admin": True},
    )
    assert abs(got.connected_at - time.time()) < 60
    run(store.remove("c1="))
    assert run(store.get("c1=")) is None
    run(store.remove("never-there"))  # a no-op, not an error


def test_state_is_kept_replaced_and_forgotten(store: ConnectionStore) -> None:
    run(store.add(ConnectionRecord("s1=", query={"room": "lobby"})))
    got = run(store.get("s1="))
    assert got is not None
    assert dict(got.state) == {}
    state = {"nick": "ann", "seat": (1, 2), "tags": ["a"], "nested": {"x": None, "ok": True}}
    assert run(store.set_state("s1=", state)) is True
    got = run(store.get("s1="))
    assert got is not None
    # JSON's types on both stores (a tuple comes back a list); connect-time context untouched.
    assert dict(got.state) == {**state, "seat": [1, 2]}
    assert dict(got.query) == {"room": "lobby"}
    state["nick"] = "changed after the call"
    assert run(store.get("s1=")).state["nick"] == "ann"  # a copy was kept, not the caller's dict
    assert run(store.set_state("s1=", {"nick": "bo"})) is True
    assert dict(run(store.get("s1=")).state) == {"nick": "bo"}  # replaced, not merged
    with pytest.raises(TypeError):
        run(store.set_state("s1=", {"when": object()}))
    assert dict(run(store.get("s1=")).state) == {"nick": "bo"}
    assert run(store.set_state("unknown=", {"nick": "x"})) is False
    assert run(store.get("unknown=")) is None  # no bare item was created
    run(store.remove("s1="))
    assert run(store.set_state("s1=", {"nick": "late"})) is False


def test_topics(store: ConnectionStore) -> None:
    for cid in ("a", "b", "c"):
        run(store.add(ConnectionRecord(cid)))
    run(store.subscribe("a", "lobby"))
    run(store.subscribe("b", "lobby"))
    run(store.subscribe("b", "kitchen"))
    run(store.subscribe("b", "lobby"))  # twice is once
    assert run(store.subscribers("lobby")) == {"a", "b"}
    assert run(store.topics("b")) == {"lobby", "kitchen"}
    run(store.unsubscribe("a", "lobby"))
    assert run(store.subscribers("lobby")) == {"b"}
    run(store.remove("b"))  # removing a connection drops its subscriptions
    assert run(store.subscribers("lobby")) == set()
    assert run(store.subscribers("kitchen")) == set()
    assert run(store.topics("b")) == set()
    assert run(store.subscribers("nobody-here")) == set()


def test_many_subscribers_page_through(store: ConnectionStore) -> None:
    ids = {f"conn-{i:04d}" for i in range(300)}  # more than one 25-item batch of deletes
    for cid in ids:
        run(store.subscribe(cid, "big"))
    assert run(store.subscribers("big")) == ids
    for cid in list(ids)[:40]:
        run(store.remove(cid))
    assert len(run(store.subscribers("big"))) == 260


def test_dynamodb_items_carry_a_ttl_of_at_least_two_hours(moto_url: str) -> None:
    store = fresh_store(moto_url)
    run(store.add(ConnectionRecord("t1=")))
    run(store.subscribe("t1=", "lobby"))
    client = boto3.client("dynamodb", endpoint_url=moto_url, region_name="us-east-1")
    items = client.scan(TableName=store.table_name)["Items"]
    assert len(items) == 3
    for item in items:
        assert int(item["ttl"]["N"]) >= time.time() + 2 * 60 * 60 - 60
    ttl = client.describe_time_to_live(TableName=store.table_name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl"
    with pytest.raises(ValueError, match="at least 7200"):
        DynamoDBStore("t", ttl_seconds=3600)


def test_ws_set_state_on_an_unknown_connection_raises_gone() -> None:
    ws = MangumWS()
    with pytest.raises(ConnectionGone, match="nobody="):
        run(ws.set_state("nobody=", {"nick": "x"}))


def test_dynamodb_reads_skip_items_past_their_ttl(moto_url: str) -> None:
    # DynamoDB deletes expired items lazily and returns them until then: an item written
    # with a ttl in the past is what a stale connection looks like.
    store = fresh_store(moto_url)
    run(store.add(ConnectionRecord("live=")))
    run(store.subscribe("live=", "lobby"))
    client = boto3.client("dynamodb", endpoint_url=moto_url, region_name="us-east-1")
    expired = {"N": str(int(time.time()) - 60)}
    for pk, sk in [
        ("conn#old=", "conn"),
        ("conn#old=", "topic#lobby"),
        ("topic#lobby", "conn#old="),
    ]:
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "ttl": expired}
        if sk == "conn":
            item |= {"connected_at": {"N": "1"}, "query": {"S": "{}"}, "authorizer": {"S": "{}"}}
        client.put_item(TableName=store.table_name, Item=item)
    assert run(store.get("old=")) is None
    assert run(store.subscribers("lobby")) == {"live="}
    assert run(store.topics("old=")) == set()
    assert run(store.set_state("old=", {"nick": "x"})) is False
    run(store.remove("old="))  # removal still finds and deletes the expired items
    keys = {(i["pk"]["S"], i["sk"]["S"]) for i in client.scan(TableName=store.table_name)["Items"]}
    assert keys == {
        ("conn#live=", "conn"),
        ("conn#live=", "topic#lobby"),
        ("topic#lobby", "conn#live="),
    }


def _leave_unprocessed(store: DynamoDBStore, times: int) -> list[int]:
    """Make the next ``times`` BatchWriteItem answers claim their first delete was unprocessed.

    moto never throttles, so the answer is edited after the real call (the delete did happen;
    sending it again is harmless, as it is on DynamoDB). Returns the size of each call.
    """
    sizes: list[int] = []
    sent: list[Any] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent[:] = params["RequestItems"][store.table_name]
        sizes.append(len(sent))

    def edit(parsed: dict[str, Any], **_: Any) -> None:
        if len(sizes) <= times:
            parsed["UnprocessedItems"] = {store.table_name: sent[:1]}

    store.client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", record)
    store.client.meta.events.register("after-call.dynamodb.BatchWriteItem", edit)
    return sizes


def test_dynamodb_retries_what_batch_writes_leave_unprocessed(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mangum_ws.store.dynamodb.full_jitter", lambda *args, **kw: 0.0)
    store = fresh_store(moto_url)
    run(store.add(ConnectionRecord("c=")))
    for topic in ("a", "b", "c"):
        run(store.subscribe("c=", topic))
    sizes = _leave_unprocessed(store, times=2)
    run(store.remove("c="))
    assert sizes == [7, 1, 1]  # 1 connection + 3 pairs, then the unprocessed one twice
    assert run(store.get("c=")) is None
    assert run(store.subscribers("a")) == set()


def test_dynamodb_gives_up_with_a_store_error_when_deletes_stay_unprocessed(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mangum_ws.store.dynamodb.full_jitter", lambda *args, **kw: 0.0)
    store = fresh_store(moto_url)
    run(store.subscribe("c=", "a"))
    sizes = _leave_unprocessed(store, times=100)
    with pytest.raises(StoreError, match=r"1 delete\(s\) .* unprocessed after 8 attempts"):
        run(store.unsubscribe("c=", "a"))
    assert sizes == [2, 1, 1, 1, 1, 1, 1, 1]


def test_streams_meet_their_cancels_in_the_store(store: ConnectionStore) -> None:
    assert not run(store.cancel_stream("c1", "s"))  # nothing running: nothing to cancel
    run(store.open_stream("c1", "s"))
    run(store.open_stream("c1", "t"))
    assert not run(store.stream_cancelled("c1", "s"))
    assert run(store.cancel_stream("c1", "s"))
    assert run(store.stream_cancelled("c1", "s"))
    assert not run(store.stream_cancelled("c1", "t"))
    assert not run(store.cancel_stream("c2", "t"))  # another connection's id
    run(store.close_stream("c1", "s"))
    assert not run(store.stream_cancelled("c1", "s"))
    assert not run(store.cancel_stream("c1", "s"))  # finished: not revived
    run(store.remove("c1"))  # the connection's end takes its streams along
    assert not run(store.cancel_stream("c1", "t"))


def test_topics_number_their_events_and_keep_the_last_few(store: ConnectionStore) -> None:
    def frame(seq: int) -> str:
        return f'{{"seq": {seq}}}'

    assert run(store.history("news", 0)) == TopicHistory(0, [])
    frames = [run(store.append_event("news", frame, 3, 60)) for _ in range(5)]
    assert frames == [frame(seq) for seq in range(1, 6)]
    run(store.append_event("other", frame, 3, 60))  # topics count on their own
    # Only the last 3 are kept; after 3, the ones past it, in order.
    assert run(store.history("news", 0)) == TopicHistory(
        5, [(3, frame(3)), (4, frame(4)), (5, frame(5))]
    )
    assert run(store.history("news", 3)) == TopicHistory(5, [(4, frame(4)), (5, frame(5))])
    assert run(store.history("news", 5)) == TopicHistory(5, [])
    assert run(store.history("other", 0)) == TopicHistory(1, [(1, frame(1))])


def test_kept_events_expire(store: ConnectionStore) -> None:
    run(store.append_event("news", str, 10, -1))  # kept until a second ago
    assert run(store.history("news", 0)) == TopicHistory(1, [])


def test_publishers_in_many_threads_never_share_a_seq() -> None:
    # The memory store, as the local API Gateway's Lambda environments share it across threads.
    # (DynamoDB's UpdateItem ADD is its documented atomic counter; moto's server does not make
    # it atomic across its request threads, so it is not raced here.)
    store = InMemoryStore()
    with ThreadPoolExecutor(8) as pool:
        frames = list(pool.map(lambda _: run(store.append_event("t", str, 1000, 60)), range(400)))
    assert sorted(frames, key=int) == [str(seq) for seq in range(1, 401)]


def test_subscriptions_remember_where_they_started(store: ConnectionStore) -> None:
    run(store.add(ConnectionRecord("c=")))
    run(store.subscribe("c=", "early"))
    for _ in range(4):
        run(store.append_event("late", str, 10, 60))
    run(store.subscribe("c=", "late"))
    run(store.subscribe("c=", "moved", after=7))
    assert run(store.subscriptions("c=")) == {"early": 0, "late": 4, "moved": 7}
    run(store.remove("c="))
    assert run(store.subscriptions("c=")) == {}


def test_sessions_are_kept_bound_and_expire(store: ConnectionStore) -> None:
    later = time.time() + 60
    record = SessionRecord("tok", "alice", "c1=", later, {"t": 3}, {"nick": "al"})
    assert run(store.put_session(record))
    assert run(store.get_session("tok")) == record
    assert run(store.get_session("other")) is None
    anonymous = SessionRecord("anon", None, None, later)
    run(store.put_session(anonymous))
    assert run(store.get_session("anon")) == anonymous
    # Conditional on its connection: a $disconnect that comes after a resume parks nothing.
    moved = dataclasses.replace(record, connection_id="c2=")
    assert not run(store.put_session(moved, if_connection="c0="))
    assert run(store.put_session(moved, if_connection="c1="))
    assert run(store.get_session("tok")) == moved
    run(store.put_session(dataclasses.replace(moved, expires_at=time.time() - 1)))
    assert run(store.get_session("tok")) is None


def test_a_connection_knows_its_session(store: ConnectionStore) -> None:
    assert not run(store.bind_session("nobody=", "tok"))
    run(store.add(ConnectionRecord("c=")))
    assert run(store.bind_session("c=", "tok"))
    got = run(store.get("c="))
    assert got is not None
    assert got.session == "tok"
