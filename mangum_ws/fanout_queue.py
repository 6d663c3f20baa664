"""Big publishes spread over Lambda invocations through SQS (``MangumWS(fanout_queue=URL)``).

One process posts a few thousand frames a second at best, and an action must answer within API
Gateway's 29 s; a topic with 100,000 subscribers needs more than one Lambda. So a publish to
more than ``threshold`` subscribers (default :data:`DEFAULT_THRESHOLD`) is split, where it has
its frame and its list of ids, into messages of at most ``batch_ids`` ids that carry the frame
as it is, sent with ``SendMessageBatch``. The same function consumes the queue through an SQS
event source (fanout_consumer.py); Lambda scales the consumers out.

A message is sealed like a background invocation (background.py), with the same key
(``MANGUM_WS_BACKGROUND_KEY``)::

    <hex HMAC-SHA256 of TEXT>.<TEXT: {"v", "queue", "issued", "endpoint", "frame", "ids"}>

so that ``ws.handler`` acts only on batches this deployment wrote for this queue: a record that
anyone else put on the queue (a principal allowed to send to it, a message moved from another
queue) is refused. The MAC sits in front of the text, not around it, so a 128 KB frame is
escaped once (as a JSON string), not twice.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import anyio
import anyio.to_thread

from .aws_clients import boto3_client
from .background import KEY_VARIABLE, Forged, mac, open_sealed
from .background import signing_key as background_key
from .backoff import full_jitter
from .errors import MissingDependencyError
from .protocol import encode
from .sending import SendReport

logger = logging.getLogger("mangum_ws")

QUEUE_VARIABLE: Final = "MANGUM_WS_FANOUT_QUEUE"
# Above this many subscribers a publish goes through the queue. One process posts ~2,500
# frames/s at 10 ms per call (benchmarks/fanout.py): 2,000 ids take about a second in-process,
# while the queue adds a hop (SendMessageBatch, then Lambda's poller) before the first post.
DEFAULT_THRESHOLD: Final = 2000
# Ids per message: one record is a fraction of a second of posting for its consumer, so a
# retried record repeats little and a batch of 10 records fits well inside a Lambda timeout.
DEFAULT_BATCH_IDS: Final = 500
# SQS's limits: 256 KiB per message and per SendMessageBatch call, 10 entries per call.
MAX_MESSAGE_BYTES: Final = 256 * 1024
MAX_ENTRIES: Final = 10
VERSION: Final = 1
_SEND_ATTEMPTS: Final = 4
_QUEUE_URL = re.compile(r"^https?://[^/]+/(\d{12})/([A-Za-z0-9_-]{1,80}(?:\.fifo)?)/?$")

signing_key = background_key  # the function's one key seals both kinds of payload


class QueueBatch(NamedTuple):
    """What one sealed message asks for: post ``frame`` to ``ids``."""

    frame: str
    ids: list[str]
    endpoint: str | None


def queue_identity(url: str) -> tuple[str, str]:
    """(account, name) of an SQS queue URL, the part of its ARN an event record carries."""
    match = _QUEUE_URL.match(url)
    if match is None:
        raise ValueError(
            "fanout_queue must be an SQS queue URL, like "
            f"https://sqs.us-east-1.amazonaws.com/123456789012/name, got {url!r}"
        )
    return match.group(1), match.group(2)


def seal_batch(
    queue: str,
    frame: str,
    ids: Sequence[str],
    endpoint: str | None,
    key: bytes,
    now: float | None = None,
) -> str:
    text = encode(
        {
            "v": VERSION,
            "queue": queue,
            "issued": int(time.time() if now is None else now),
            "endpoint": endpoint,
            "frame": frame,
            "ids": list(ids),
        }
    )
    return f"{mac(key, text)}.{text}"


def unseal_batch(body: Any, queue: str, key: bytes | None, now: float | None = None) -> QueueBatch:
    """The batch inside a message :func:`seal_batch` made for ``queue``; Forged if not."""
    if key is None:
        raise Forged(f"{KEY_VARIABLE} is not set (or shorter than 32 characters)")
    if not isinstance(body, str) or "." not in body:
        raise Forged("it is not shaped like a sealed batch")
    claimed, _, text = body.partition(".")
    sealed = open_sealed(key, text, claimed, VERSION, now)
    ids = sealed.get("ids")
    if (
        not isinstance(sealed.get("frame"), str)
        or not isinstance(ids, list)
        or not all(isinstance(i, str) for i in ids)
    ):
        raise Forged("it was sealed in another format")
    if sealed.get("queue") != queue:
        raise Forged(f"it was sealed for another queue ({sealed.get('queue')!r})")
    endpoint = sealed.get("endpoint")
    return QueueBatch(
        sealed["frame"], sealed["ids"], endpoint if isinstance(endpoint, str) else None
    )


def split_ids(frame: str, ids: Sequence[str], batch_ids: int) -> list[list[str]]:
    """``ids`` in chunks of at most ``batch_ids`` that each fit one message with ``frame``."""
    room = MAX_MESSAGE_BYTES - len(encode(frame)) - 200  # the MAC, the other fields
    if room < 100:
        raise ValueError(f"a frame of {len(frame)} bytes leaves no room for ids in a message")
    chunks: list[list[str]] = []
    chunk: list[str] = []
    size = 0
    for connection_id in ids:
        cost = len(encode(connection_id)) + 1
        if chunk and (len(chunk) >= batch_ids or size + cost > room):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(connection_id)
        size += cost
    if chunk:
        chunks.append(chunk)
    return chunks


def group_entries(bodies: Sequence[str]) -> list[list[tuple[str, str]]]:
    """(entry id, body) pairs grouped into SendMessageBatch calls within SQS's limits."""
    calls: list[list[tuple[str, str]]] = []
    call: list[tuple[str, str]] = []
    size = 0
    for index, body in enumerate(bodies):
        cost = len(body.encode())
        if call and (len(call) >= MAX_ENTRIES or size + cost > MAX_MESSAGE_BYTES):
            calls.append(call)
            call, size = [], 0
        call.append((str(index), body))
        size += cost
    if call:
        calls.append(call)
    return calls


class QueueNotReached(Exception):
    """SQS did not take a message after the retries; the message says why."""


class FanoutQueue:
    """The sending side: splits a publish into sealed messages on the queue at ``url``.

    The SQS client (boto3, the ``aws`` extra) is built at the first big publish, never at
    import; its region is the queue URL's (``sqs.{region}.amazonaws.com``), else botocore's.
    """

    def __init__(
        self,
        url: str,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        batch_ids: int = DEFAULT_BATCH_IDS,
        concurrency: int = 4,
    ) -> None:
        self.account, self.name = queue_identity(url)
        if threshold < 0:
            raise ValueError("fanout_threshold must be 0 or more")
        if batch_ids < 1:
            raise ValueError("batch_ids must be at least 1")
        self.url = url
        self.threshold = threshold
        self.batch_ids = batch_ids
        self.concurrency = concurrency
        self._client: Any = None
        self._lock = threading.Lock()

    def wants(self, subscribers: int) -> bool:
        return subscribers > self.threshold

    def claims(self, event: Any) -> bool:
        """Whether ``event`` is a batch of this queue's records (each may still be forged)."""
        if not isinstance(event, dict):
            return False
        records = event.get("Records")
        suffix = f":{self.account}:{self.name}"
        return (
            isinstance(records, list)
            and bool(records)
            and all(
                isinstance(r, dict)
                and r.get("eventSource") == "aws:sqs"
                and isinstance(r.get("eventSourceARN"), str)
                and r["eventSourceARN"].startswith("arn:")
                and r["eventSourceARN"].endswith(suffix)
                for r in records
            )
        )

    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    region = re.search(r"sqs\.([a-z0-9-]+)\.amazonaws", self.url)
                    self._client = boto3_client(
                        "sqs",
                        "fan-out queues",
                        region=region.group(1) if region else None,
                        endpoint_url=None if region else self.url.split(f"/{self.account}/")[0],
                        read_timeout=10,
                    )
        return self._client

    async def enqueue(self, ids: Sequence[str], frame: str, endpoint: str | None) -> SendReport:
        """Put ``frame`` for ``ids`` on the queue; the report's ``queued`` holds the ids taken,
        ``failed`` those whose message SQS did not take."""
        key = signing_key()
        if key is None:
            raise MissingDependencyError(
                f"a fan-out queue needs {KEY_VARIABLE} (at least 32 characters): it seals the "
                "batches, so that only this function's own are posted"
            )
        chunks = split_ids(frame, ids, self.batch_ids)
        bodies = [seal_batch(self.url, frame, chunk, endpoint, key) for chunk in chunks]
        report = SendReport()
        pending = iter(group_entries(bodies))

        async def worker() -> None:
            for call in pending:
                try:
                    refused = await anyio.to_thread.run_sync(self._send_blocking, call)
                except Exception as exc:  # the whole call: every id of it failed
                    refused = {entry: exc for entry, _ in call}
                for entry, _ in call:
                    for connection_id in chunks[int(entry)]:
                        if entry in refused:
                            report.failed[connection_id] = refused[entry]
                        else:
                            report.queued.add(connection_id)

        async with anyio.create_task_group() as group:
            for _ in range(self.concurrency):
                group.start_soon(worker)
        if report.failed:
            logger.error(
                "fan-out: %d of %d ids not queued (%s)",
                len(report.failed),
                len(ids),
                next(iter(report.failed.values())),
            )
        return report

    def _send_blocking(self, call: list[tuple[str, str]]) -> dict[str, Exception]:
        """Send one batch; retry the entries SQS failed on its side. Returns those it refused."""
        entries = dict(call)
        refused: dict[str, Exception] = {}
        for attempt in range(_SEND_ATTEMPTS):
            answer = self.client().send_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": entry, "MessageBody": body} for entry, body in entries.items()],
            )
            retry: dict[str, str] = {}
            for failure in answer.get("Failed", []):
                entry = failure["Id"]
                if failure.get("SenderFault") or attempt + 1 == _SEND_ATTEMPTS:
                    refused[entry] = QueueNotReached(
                        f"{failure.get('Code')}: {failure.get('Message', '')}"
                    )
                else:
                    retry[entry] = entries[entry]
            if not retry:
                return refused
            entries = retry
            time.sleep(full_jitter(attempt, 0.05, 1.0))
        return refused
