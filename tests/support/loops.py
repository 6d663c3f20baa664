"""Running a coroutine from a synchronous test that also drives Mangum."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_on_mangums_loop(coro: Coroutine[Any, Any, T]) -> T:
    """On the thread's current loop, the one Mangum installs and keeps (conftest closes it after
    each test): asyncio.run would unset that loop and leak it unclosed."""
    return asyncio.get_event_loop_policy().get_event_loop().run_until_complete(coro)
