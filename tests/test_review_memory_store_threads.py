"""InMemoryStore behind the local API Gateway is shared by its Lambda environments, each a
thread with its own event loop: a $disconnect in one must not fail because a stream opens or
closes in another."""

from __future__ import annotations

import asyncio
import threading

from mangum_ws import InMemoryStore


def test_remove_while_another_thread_opens_and_closes_streams() -> None:
    store = InMemoryStore()

    async def many_streams() -> None:
        for n in range(2000):
            await store.open_stream(f"c{n}", "s")

    asyncio.run(many_streams())
    stop = threading.Event()

    async def churn() -> None:
        n = 0
        while not stop.is_set():
            await store.open_stream("busy", str(n))
            await store.close_stream("busy", str(n))
            n += 1

    other = threading.Thread(target=asyncio.run, args=(churn(),))
    other.start()

    async def disconnects() -> None:
        for n in range(3000):
            await store.remove(f"gone{n}")  # raised "dictionary changed size during iteration"

    try:
        asyncio.run(disconnects())
    finally:
        stop.set()
        other.join(timeout=10)
    assert asyncio.run(store.stream_cancelled("c0", "s")) is False
    assert asyncio.run(store.cancel_stream("c0", "s")) is True
