"""Big publishes through SQS (moto's server over real HTTP), consumed by ws.handler through the
local API Gateway's event source, posting to a @connections stand-in on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

from mangum_ws import AwsGateway, InMemoryStore, MangumWS
from mangum_ws.background import KEY_VARIABLE, Forged
from mangum_ws.fanout_queue import (
    MAX_MESSAGE_BYTES,
    queue_identity,
    seal_batch,
    split_ids,
    unseal_batch,
)
from mangum_ws.local import LocalApiGateway
from mangum_ws.local.queue_poller import sqs_event
from tests.support.events import FakeLambdaContext
from tests.support.loops import run_on_mangums_loop
from tests.support.management_api import Answer, ManagementApi

KEY = "k" * 40


class Said(BaseModel):
    text: str


@pytest.fixture(autouse=True)
def _signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_VARIABLE, KEY)


@pytest.fixture
def sqs(moto_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=moto_url, region_name="us-east-1")


@pytest.fixture
def queues(sqs: Any) -> tuple[str, str]:
    """(queue URL, dead-letter queue URL), received twice at most.

    The visibility timeout is far above the time a loaded machine takes to handle a record, so
    a record is never handed out again while it is being handled; the local event source makes
    a record the handler reported failed visible again at once (``fanout_retry_after=0``).
    """
    name = f"fanout-{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": "60",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
        },
    )["QueueUrl"]
    return queue, dlq


def build(mgmt_api: ManagementApi, queue: str) -> tuple[MangumWS, InMemoryStore]:
    store = InMemoryStore()
    gateway = AwsGateway(mgmt_api.url, max_attempts=1)
    ws = MangumWS(gateway=gateway, store=store, fanout_queue=queue, fanout_threshold=10)
    assert ws.fanout is not None
    ws.fanout.batch_ids = 4
    ws.event("said", Said)
    return ws, store


def lambda_handler(ws: MangumWS) -> Mangum:
    """Built after the test's own asyncio.run calls: Mangum sets up the loop it runs on."""
    app = FastAPI()
    app.include_router(ws.router)
    return Mangum(app, lifespan="off", custom_handlers=[ws.handler])


class Recording:
    """The Lambda handler, keeping every SQS record it was given (in the order received)."""

    def __init__(self, handler: Mangum) -> None:
        self.handler = handler
        self.custom_handlers = handler.custom_handlers  # the emulator finds the MangumWS here
        self.records: list[dict[str, Any]] = []

    def __call__(self, event: Any, context: Any) -> Any:
        self.records.extend(event.get("Records", []))
        return self.handler(event, context)

    def ids_of(self, record: dict[str, Any], queue: str) -> list[str]:
        return unseal_batch(record["body"], queue, KEY.encode()).ids

    def deliveries(self) -> dict[str, int]:
        """How many times each message was handed to the handler."""
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record["messageId"]] = counts.get(record["messageId"], 0) + 1
        return counts


def consuming(handler: Recording) -> LocalApiGateway:
    """The local API Gateway consuming the MangumWS's queue; failed records come back at once."""
    return LocalApiGateway(handler, fanout_retry_after=0)


def wait_until(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def subscribe(ws: MangumWS, ids: list[str]) -> None:
    async def all_of_them() -> None:
        for cid in ids:
            await ws.subscribe(cid, "room")

    asyncio.run(all_of_them())


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def test_a_big_publish_goes_through_the_queue_and_every_id_is_posted_once(
    mgmt_api: ManagementApi, queues: tuple[str, str], sqs: Any
) -> None:
    queue, dlq = queues
    ws, _ = build(mgmt_api, queue)
    ids = [f"id-{i}=" for i in range(22)]
    subscribe(ws, ids)

    report = asyncio.run(ws.publish("room", "said", {"text": "hi"}))
    assert report.queued == set(ids)
    assert not report.delivered
    assert not report.gone
    assert not report.failed
    assert mgmt_api.posts == []  # nothing posted by the publisher itself
    assert queue_depth(sqs, queue) == 6  # 22 ids, 4 a message

    handler = Recording(lambda_handler(ws))
    with consuming(handler):
        wait_until(lambda: queue_depth(sqs, queue) == 0)
    assert sorted(handler.deliveries().values()) == [1] * 6  # each record handled once
    posted = sorted(cid for cid, _ in mgmt_api.posts)
    assert posted == sorted(ids)
    frame = {"type": "event", "event": "said", "topic": "room", "seq": 1, "data": {"text": "hi"}}
    assert all(json.loads(data) == frame for _, data in mgmt_api.posts)
    assert queue_depth(sqs, dlq) == 0


def test_a_small_publish_is_posted_by_the_publisher(
    mgmt_api: ManagementApi, queues: tuple[str, str], sqs: Any
) -> None:
    queue, _ = queues
    ws, _ = build(mgmt_api, queue)
    ids = [f"id-{i}" for i in range(10)]  # the threshold: not above it
    subscribe(ws, ids)
    report = asyncio.run(ws.publish("room", "said", {"text": "hi"}))
    assert report.delivered == set(ids)
    assert not report.queued
    assert queue_depth(sqs, queue) == 0


def test_gone_ids_are_removed_and_only_the_failed_record_is_retried(
    mgmt_api: ManagementApi, queues: tuple[str, str], sqs: Any
) -> None:
    queue, dlq = queues
    ws, store = build(mgmt_api, queue)
    ids = ["a-flaky", *(f"id-{i}" for i in range(12)), "z-gone-1", "z-gone-2"]

    def answer(cid: str, attempt: int) -> Answer:
        if cid.startswith("z-gone"):
            return Answer(410)
        return Answer(500 if cid == "a-flaky" and attempt == 1 else 200)

    mgmt_api.responder = answer
    subscribe(ws, ids)
    assert asyncio.run(ws.publish("room", "said", {"text": "hi"})).queued == set(ids)
    handler = Recording(lambda_handler(ws))
    with consuming(handler):
        wait_until(lambda: queue_depth(sqs, queue) == 0)

    # The record holding the flaky id came twice (failed, then retried); every other once.
    flaky = [r for r in handler.records if "a-flaky" in handler.ids_of(r, queue)]
    assert len({r["messageId"] for r in flaky}) == 1
    deliveries = handler.deliveries()
    assert deliveries.pop(flaky[0]["messageId"]) == 2
    assert sorted(deliveries.values()) == [1] * 3  # 15 ids, 4 a record
    # The delivery guarantee: the rest of the retried record had the frame twice (a gone id
    # its 410 twice); every id of the other records was posted once.
    batch_of_flaky = set(handler.ids_of(flaky[0], queue))
    counts = {cid: mgmt_api.attempts.get(cid, 0) for cid in ids}
    assert {cid: n for cid, n in counts.items() if n != 1} == dict.fromkeys(batch_of_flaky, 2)
    assert {cid for cid, _ in mgmt_api.posts} == set(ids) - {"z-gone-1", "z-gone-2"}
    remaining = run_on_mangums_loop(store.subscribers("room"))
    assert set(remaining) == set(ids) - {"z-gone-1", "z-gone-2"}
    assert queue_depth(sqs, dlq) == 0


def test_forged_records_are_never_posted_and_end_in_the_dead_letter_queue(
    mgmt_api: ManagementApi, queues: tuple[str, str], sqs: Any
) -> None:
    queue, dlq = queues
    ws, _ = build(mgmt_api, queue)
    genuine = seal_batch(queue, '{"x":1}', ["victim"], None, KEY.encode())
    forged = [
        seal_batch(queue, '{"x":1}', ["victim"], None, b"another key of forty characters...."),
        genuine.replace("victim", "someone"),  # the text changed under its MAC
        seal_batch("https://sqs.x/123456789012/other", '{"x":1}', ["victim"], None, KEY.encode()),
        seal_batch(queue, '{"x":1}', ["victim"], None, KEY.encode(), now=time.time() - 3 * 3600),
        json.dumps({"ids": ["victim"], "frame": "x"}),
    ]
    for body in forged:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    with consuming(Recording(lambda_handler(ws))):
        wait_until(lambda: queue_depth(sqs, dlq) == len(forged), timeout=30)
    assert mgmt_api.attempts == {}


def test_only_the_configured_queues_records_are_claimed(
    mgmt_api: ManagementApi, queues: tuple[str, str]
) -> None:
    queue, _ = queues
    account, name = queue_identity(queue)
    record = {"MessageId": "m1", "ReceiptHandle": "r", "Body": "x"}
    ours = sqs_event([record], f"arn:aws:sqs:us-east-1:{account}:{name}")
    other = sqs_event([record], f"arn:aws:sqs:us-east-1:{account}:{name}-other")
    ws, _ = build(mgmt_api, queue)
    context: Any = FakeLambdaContext()
    config: Any = {}
    assert ws.handler.infer(ours, context, config)
    assert not ws.handler.infer(other, context, config)
    without_queue = MangumWS(endpoint_url=mgmt_api.url)
    assert not without_queue.handler.infer(ours, context, config)


def test_a_claimed_batch_answers_with_its_failed_records(
    mgmt_api: ManagementApi, queues: tuple[str, str]
) -> None:
    # Straight through Mangum, as Lambda's poller calls it: the answer is batchItemFailures.
    queue, _ = queues
    account, name = queue_identity(queue)
    ws, _ = build(mgmt_api, queue)
    handler = lambda_handler(ws)
    mgmt_api.responder = lambda cid, attempt: Answer(403 if cid == "denied" else 200)
    bodies = {
        "ok": seal_batch(queue, '{"n":1}', ["a", "b"], None, KEY.encode()),
        "partly": seal_batch(queue, '{"n":2}', ["c", "denied"], None, KEY.encode()),
        "forged": "0" * 64 + '.{"v":1}',
    }
    messages = [{"MessageId": m, "ReceiptHandle": m, "Body": b} for m, b in bodies.items()]
    event = sqs_event(messages, f"arn:aws:sqs:us-east-1:{account}:{name}")
    answer = handler(event, FakeLambdaContext())
    failed = sorted(f["itemIdentifier"] for f in answer["batchItemFailures"])
    assert failed == ["forged", "partly"]
    assert sorted(cid for cid, _ in mgmt_api.posts) == ["a", "b", "c"]


def test_the_sealed_batch_carries_the_frame_as_is() -> None:
    frame = json.dumps({"type": "event", "event": "e", "topic": "t", "seq": 7, "data": 'ü"='})
    body = seal_batch("https://q/123456789012/q", frame, ["a=", "b"], "https://x/prod", b"k" * 32)
    batch = unseal_batch(body, "https://q/123456789012/q", b"k" * 32)
    assert (batch.frame, batch.ids, batch.endpoint) == (frame, ["a=", "b"], "https://x/prod")
    with pytest.raises(Forged, match="not set"):
        unseal_batch(body, "https://q/123456789012/q", None)


def test_every_message_fits_sqs_limits() -> None:
    frame = json.dumps({"data": '"' * 60_000})  # escaping doubles it: ~120 KB in the message
    ids = [f"{i:0>40}" for i in range(10_000)]
    chunks = split_ids(frame, ids, 500)
    assert [cid for chunk in chunks for cid in chunk] == ids
    for chunk in chunks:
        body = seal_batch("https://q/123456789012/q", frame, chunk, "https://x/p", b"k" * 32)
        assert len(body.encode()) <= MAX_MESSAGE_BYTES
    assert max(len(c) for c in split_ids("{}", ids, 500)) == 500


@pytest.mark.parametrize("url", ["https://sqs.us-east-1.amazonaws.com/name", "not a url"])
def test_a_queue_that_is_not_an_sqs_url_is_refused_up_front(url: str) -> None:
    with pytest.raises(ValueError, match="SQS queue URL"):
        MangumWS(endpoint_url="https://x.execute-api.eu-west-1.amazonaws.com/p", fanout_queue=url)
