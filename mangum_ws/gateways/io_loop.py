"""One event loop in a daemon thread, where the Management API's HTTP client lives.

An async HTTP client's pool belongs to the event loop that opened it, and callers come on many
loops: ``asyncio.run`` per test or script, the loop Mangum keeps across invocations, uvicorn's.
A pool tied to one of them would be rebuilt (and its keep-alive connections lost) at every new
loop, and left unclosed when that loop ends. So the client lives on a loop of its own for the
life of the process; a caller hands it one coroutine per send or per fan-out (one thread hop
for a whole fan-out, not one per id) and awaits the result on its own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (the ``fast`` extra): its transports and callbacks
    cost a fraction of asyncio's per request, and this loop does nothing but send requests."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class IoLoop:
    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop, started with its thread on first use."""
        if self._loop is None:
            with self._lock:
                if self._loop is None:
                    loop = new_event_loop()
                    threading.Thread(target=loop.run_forever, name=self.name, daemon=True).start()
                    self._loop = loop
        return self._loop

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on this loop; cancelling the caller cancels it there too."""
        loop = self.loop
        if asyncio.get_running_loop() is loop:
            return await coroutine
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))


io_loop = IoLoop("mangum-ws management api")
