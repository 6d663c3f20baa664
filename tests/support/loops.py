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


def invoke_in_thread(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]], event: dict[str, Any], context: Any
) -> tuple[threading.Thread, list[dict[str, Any]]]:
    """Start one invocation in a thread with an event loop of its own, as another Lambda
    process runs it; returns the thread and the list its answer is appended to."""
    answers: list[dict[str, Any]] = []

    def invoke() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            answers.append(handler(event, context))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    thread = threading.Thread(target=invoke)
    thread.start()
    return thread, answers


def run_aside(coro: Coroutine[Any, Any, T]) -> T:
    """On a new loop of its own, closed after: the thread's current loop (if any) untouched."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
