"""Invoking the Lambda handler the way the Lambda service does: one event at a time per
execution environment, each environment a thread with its own event loop (Mangum needs one)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("mangum_ws.local")

LambdaHandlerFn = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The context object Lambda passes to a handler, with the usual attributes."""

    function_name: str = "mangum-ws-local"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/mangum-ws-local"
    log_stream_name: str = "local/[$LATEST]emulator"
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InvocationFailed(Exception):
    """The handler raised or returned something API Gateway cannot use."""


class LambdaRuntime:
    def __init__(
        self,
        handler: LambdaHandlerFn,
        *,
        concurrency: int = 1,
        function_name: str = "mangum-ws-local",
        timeout_seconds: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.handler = handler
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._pool = ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="lambda", initializer=self._new_loop
        )

    def _new_loop(self) -> None:
        # Each execution environment keeps one loop, as Mangum does for a Lambda process.
        loop = asyncio.new_event_loop()
        self._loops.append(loop)
        asyncio.set_event_loop(loop)

    def _invoke_blocking(self, event: dict[str, Any]) -> dict[str, Any]:
        context = LambdaContext(
            function_name=self.function_name, timeout_seconds=self.timeout_seconds
        )
        try:
            result = self.handler(event, context)
        except Exception as exc:
            logger.exception("the Lambda handler raised (request %s)", context.aws_request_id)
            raise InvocationFailed(str(exc)) from exc
        if not isinstance(result, dict):
            raise InvocationFailed(f"the handler returned {type(result).__name__}, not a dict")
        return result

    async def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._invoke_blocking, event)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for loop in self._loops:
            loop.close()
        self._loops.clear()
