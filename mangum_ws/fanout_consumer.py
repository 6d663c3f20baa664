"""The consuming side of the fan-out queue: SQS records, posted by the same function.

The SQS event source hands ``ws.handler`` up to ``BatchSize`` records of the queue; each is
one sealed batch (fanout_queue.py). Every id of a batch is posted, the gone ones are removed
from the store, and the answer lists, as ``batchItemFailures`` (the event source mapping's
``ReportBatchItemFailures``), the records to deliver again: those with an id that failed after
the gateway's retries, and those that are not this deployment's (forged, or sealed for another
queue), which are never posted and so reach the dead-letter queue, where they can be looked at.

Delivery is at least once. A record retried because one of its ids failed posts its frame
again to the ids that had it already; so does one whose invocation died part-way (timeout,
crash), and SQS itself may deliver a message twice. A client that must not see an event twice
dedupes it (topic events will carry a sequence number for that).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .background import Forged
from .fanout_queue import FanoutQueue, signing_key, unseal_batch
from .sending import fan_out, for_each

if TYPE_CHECKING:
    from .app import MangumWS

logger = logging.getLogger("mangum_ws")


def _request_context(endpoint: str) -> dict[str, str]:
    """The requestContext fields an AwsGateway learns its endpoint from (https://{domain}/{stage})."""
    parts = urlsplit(endpoint)
    stage = parts.path.strip("/")
    if parts.scheme != "https" or not parts.hostname or not stage or "/" in stage:
        return {}
    return {"domainName": parts.netloc, "stage": stage}


async def consume(owner: MangumWS, queue: FanoutQueue, event: Mapping[str, Any]) -> dict[str, Any]:
    """Post every batch of ``event``; the answer for Lambda's SQS poller."""
    key = signing_key()
    retry: list[str] = []

    async def post_batch(record: Mapping[str, Any]) -> None:
        message_id = str(record.get("messageId", ""))
        try:
            batch = unseal_batch(record.get("body"), queue.url, key)
        except Forged as exc:
            logger.warning("refused fan-out record %s (never posted): %s", message_id, exc)
            retry.append(message_id)
            return
        if batch.endpoint:
            owner.gateway.learn_endpoint(_request_context(batch.endpoint))
        try:
            report = await fan_out(
                owner.gateway, batch.ids, batch.frame.encode(), owner.max_concurrency
            )
        except Exception as exc:  # no endpoint, no credentials: the whole record again
            logger.error("fan-out record %s not posted: %r", message_id, exc)
            retry.append(message_id)
            return
        await owner.forget_gone(report.gone)
        if report.failed:
            logger.warning(
                "fan-out record %s: %d of %d ids failed (%r); the record will be retried",
                message_id,
                len(report.failed),
                len(batch.ids),
                next(iter(report.failed.values())),
            )
            retry.append(message_id)

    records = event["Records"]
    await for_each(records, post_batch, len(records))
    return {"batchItemFailures": [{"itemIdentifier": m} for m in retry]}
