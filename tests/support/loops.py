"""Running a coroutine from a synchronous test that also drives Mangum."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_mangums_loop(coro: Coroutine[Any, Any, T]) -> T:
    """On the thread's current loop, the one Mangum installs and keeps (conftest closes it after
    each test): asyncio.run would unset that loop and leak it unclosed."""
    return asyncio.get_event_loop_policy().get_event_loop().run_until_complete(coro)


def start_on_a_loop_of_its_own(call: Callable[[], T]) -> tuple[threading.Thread, list[T]]:
    """Start ``call`` in a thread with an event loop of its own, as a second Lambda process runs
    Mangum; the list gets what it returns, once the thread is joined."""
    returned: list[T] = []

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            returned.append(call())
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, returned
