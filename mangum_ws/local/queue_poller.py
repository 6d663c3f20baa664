"""Lambda's SQS event source mapping, played locally for the fan-out queue.

It long-polls the queue (any SQS API: AWS's own, or moto's server by URL), hands up to
``batch_size`` messages at a time to the Lambda handler as the records Lambda builds, and
deletes the ones the handler did not list in ``batchItemFailures`` (the mapping's
``ReportBatchItemFailures``). The others come back after the queue's visibility timeout, and
past its redrive policy's ``maxReceiveCount`` SQS moves them to the dead-letter queue, as on AWS.
An invocation that fails leaves its whole batch to come back.

``retry_after`` (seconds; None, the default, is AWS's behaviour) is a local shortcut: the failed
records' visibility is set to it with ``ChangeMessageVisibilityBatch`` so they come back sooner
than the queue's visibility timeout. Nothing else changes: SQS still counts each receive, so the
redrive policy moves a record that keeps failing to the dead-letter queue as on AWS. It lets
tests keep a visibility timeout far above a loaded machine's processing time (no record handed
out twice while it is still being handled) and still see a failed record retried promptly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread

from ..fanout_queue import FanoutQueue

# SQS's longest visibility timeout (12 h): the range ChangeMessageVisibility accepts.
MAX_VISIBILITY = 43_200
logger = logging.getLogger("mangum_ws.local")

Invoke = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's poller builds from ``ReceiveMessage``'s messages."""
    region = queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else "us-east-1"
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class QueuePoller:
    def __init__(
        self,
        queue: FanoutQueue,
        invoke: Invoke,
        *,
        batch_size: int = 10,
        wait_seconds: int = 1,
        retry_after: int | None = None,
    ) -> None:
        self.queue = queue
        self.invoke = invoke
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.retry_after = retry_after
        self._arn: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _receive_blocking(self) -> list[dict[str, Any]]:
        client = self.queue.client()
        if self._arn is None:
            attributes = client.get_queue_attributes(
                QueueUrl=self.queue.url, AttributeNames=["QueueArn"]
            )
            self._arn = str(attributes["Attributes"]["QueueArn"])
        answer = client.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = answer.get("Messages", [])
        return messages

    def _delete_blocking(self, handles: list[str]) -> None:
        for start in range(0, len(handles), 10):
            answer = self.queue.client().delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h}
                    for i, h in enumerate(handles[start : start + 10])
                ],
            )
            for failure in answer.get("Failed", []):  # it will come back: a second delivery
                logger.warning("a handled fan-out record was not deleted: %s", failure)

    def _retry_soon_blocking(self, handles: list[str]) -> None:
        for start in range(0, len(handles), 10):
            answer = self.queue.client().change_message_visibility_batch(
                QueueUrl=self.queue.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": self.retry_after}
                    for i, h in enumerate(handles[start : start + 10])
                ],
            )
            for failure in answer.get("Failed", []):  # it comes back after the queue's timeout
                logger.warning("a failed fan-out record keeps its visibility timeout: %s", failure)

    async def _retry(self, messages: list[dict[str, Any]]) -> None:
        if self.retry_after is not None and messages:
            handles = [m["ReceiptHandle"] for m in messages]
            await anyio.to_thread.run_sync(self._retry_soon_blocking, handles)

    async def poll_once(self) -> int:
        """Receive one batch (waiting up to ``wait_seconds``), run it; the records handled."""
        messages = await anyio.to_thread.run_sync(self._receive_blocking)
        if not messages:
            return 0
        assert self._arn is not None
        try:
            answer = await self.invoke(sqs_event(messages, self._arn))
            failures = answer.get("batchItemFailures", [])
            retry = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
        except Exception as exc:
            logger.error(
                "the fan-out batch failed; its %d records will return: %s", len(messages), exc
            )
            await self._retry(messages)
            return len(messages)
        done = [m["ReceiptHandle"] for m in messages if m["MessageId"] not in retry]
        if done:
            await anyio.to_thread.run_sync(self._delete_blocking, done)
        await self._retry([m for m in messages if m["MessageId"] in retry])
        return len(messages)

    async def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; an SQS error is logged and polling goes on after a pause."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception as exc:
                logger.error("polling the fan-out queue %s failed: %r", self.queue.url, exc)
                await anyio.sleep(1)

    def start(self) -> None:
        """Poll in a thread of its own until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=anyio.run, args=(self.run, self._stop), name="fan-out queue", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.wait_seconds + 30)
            self._thread = None
