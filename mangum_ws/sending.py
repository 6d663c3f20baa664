"""Fan-out: one payload to many connections, bounded, with every id accounted for."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import anyio

from .errors import ConnectionGone

if TYPE_CHECKING:
    from .gateways.base import Gateway

T = TypeVar("T")


@dataclass(slots=True)
class SendReport:
    """Where each id of a send ended: exactly one of delivered, gone, failed or queued.

    ``gone`` ids are closed for good (API Gateway's 410): drop them. ``failed`` ids hit another
    error after the retries (403, throttling that outlasted the backoff, timeouts): they may well
    be alive, so keep them. ``queued`` ids were handed to the fan-out queue
    (``MangumWS(fanout_queue=...)``): its consumers post to them, and drop the gone ones.
    """

    delivered: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    failed: dict[str, BaseException] = field(default_factory=dict)
    queued: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.failed

    def settle(self, connection_id: str, error: BaseException | None) -> None:
        """File an id under what its send ended in: None is delivered."""
        if error is None:
            self.delivered.add(connection_id)
        elif isinstance(error, ConnectionGone):
            self.gone.add(connection_id)
        else:
            self.failed[connection_id] = error


@runtime_checkable
class BatchGateway(Protocol):
    """A gateway that sends one payload to many ids better than one ``post`` at a time."""

    async def post_many(
        self, connection_ids: Sequence[str], data: bytes, concurrency: int
    ) -> SendReport: ...


async def fan_out(
    gateway: Gateway, connection_ids: Iterable[str], payload: bytes, concurrency: int
) -> SendReport:
    """Post ``payload`` to every id, at most ``concurrency`` at a time (no task per id)."""
    if isinstance(gateway, BatchGateway):
        return await gateway.post_many(list(dict.fromkeys(connection_ids)), payload, concurrency)
    report = SendReport()
    post = settling(report, lambda connection_id: gateway.post(connection_id, payload))
    await for_each(dict.fromkeys(connection_ids), post, concurrency)
    return report


def settling(
    report: SendReport, post: Callable[[str], Awaitable[None]]
) -> Callable[[str], Awaitable[None]]:
    """``post`` for one id, the id filed in ``report`` under what the post ended in."""

    async def post_one(connection_id: str) -> None:
        try:
            await post(connection_id)
        except Exception as exc:
            report.settle(connection_id, exc)
        else:
            report.settle(connection_id, None)

    return post_one


async def for_each(
    items: Collection[T], func: Callable[[T], Awaitable[None]], concurrency: int
) -> None:
    """``await func(item)`` for every item, at most ``concurrency`` at a time.

    A few workers share one iterator instead of a task per item, so a send to 10,000 ids
    holds ``concurrency`` tasks, not 10,000. ``func`` handles its own errors.
    """
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await func(item)

    async with anyio.create_task_group() as workers:
        for _ in range(min(concurrency, len(items))):
            workers.start_soon(worker)
