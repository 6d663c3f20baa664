"""Invoking the Lambda handler the way the Lambda service does: one event at a time per
execution environment, each environment a thread with its own event loop (Mangum needs one)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..background import KEY_VARIABLE

logger = logging.getLogger("mangum_ws.local")

LambdaHandlerFn = Callable[[dict[str, Any], Any], Any]

FUNCTION_NAME = "mangum-ws-local"
FUNCTION_VERSION = "$LATEST"
MEMORY_MB = 512
LOG_STREAM_NAME = "local/[$LATEST]emulator"
DEFAULT_REGION = "us-east-1"
# Lambda's runtime always hands the function credentials (its role's); without any, the emulator
# gives these. Its management API reads no signature, so they only have to exist.
PLACEHOLDER_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ASIAMANGUMWSLOCAL000",
    "AWS_SECRET_ACCESS_KEY": "placeholder-set-by-the-mangum-ws-local-api-gateway",
    "AWS_SESSION_TOKEN": "placeholder-set-by-the-mangum-ws-local-api-gateway",
}


def _region() -> str:
    """The region this machine's AWS configuration names (a profile's too), else us-east-1."""
    found = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if found:
        return found
    try:
        import botocore.session
    except ImportError:
        return DEFAULT_REGION
    try:
        region = botocore.session.Session().get_config_variable("region")
    except Exception:  # a broken config file is the user's to see; it is no region
        return DEFAULT_REGION
    return str(region or DEFAULT_REGION)


def has_credentials() -> bool:
    """Whether this process finds AWS credentials: variables, a profile, SSO, a process, a
    container's endpoint... everything botocore looks for but the EC2 instance metadata
    service, which the emulator never asks (a laptop has none, and asking it costs seconds)."""
    if os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"):
        return True
    try:
        import botocore.session
    except ImportError:  # no SDK to look with: anything configured is for another tool
        return False
    try:
        resolver = botocore.session.Session().get_component("credential_provider")
        resolver.remove("iam-role")
        return resolver.load_credentials() is not None
    except Exception:  # configured, but broken: the user's own to fix, never overwritten
        return True


def lambda_environment(
    handler: str,
    task_root: str,
    *,
    function_name: str = FUNCTION_NAME,
    memory_mb: int = MEMORY_MB,
    lambda_endpoint: str | None = None,
) -> dict[str, str]:
    """The variables Lambda's runtime sets for a function that this process does not have yet.

    Two more make background actions run as on AWS: ``AWS_ENDPOINT_URL_LAMBDA`` (botocore's
    endpoint for Lambda) is ``lambda_endpoint``, the emulator's own Invoke API, and
    ``MANGUM_WS_BACKGROUND_KEY`` a fresh random key, as the SAM template's secret is on AWS.

    The emulator runs the handler in its own process, so these go into ``os.environ`` (the
    CLI does it before importing the handler, as Lambda does). Nothing already set is
    replaced: a region or credentials configured on this machine stay what the handler sees,
    and the placeholder credentials come only when :func:`has_credentials` finds none.
    """
    region = _region()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    wanted = {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": FUNCTION_VERSION,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": LOG_STREAM_NAME,
        "LAMBDA_TASK_ROOT": os.path.abspath(task_root),
        "_HANDLER": handler,
        KEY_VARIABLE: secrets.token_urlsafe(32),
    }
    if lambda_endpoint is not None:
        wanted["AWS_ENDPOINT_URL_LAMBDA"] = lambda_endpoint
    missing = {name: value for name, value in wanted.items() if name not in os.environ}
    if not has_credentials():
        missing.update(PLACEHOLDER_CREDENTIALS)
    return missing


@dataclass
class LambdaContext:
    """The context object Lambda passes to a handler, with the usual attributes."""

    function_name: str = FUNCTION_NAME
    function_version: str = FUNCTION_VERSION
    memory_limit_in_mb: int = MEMORY_MB
    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = f"/aws/lambda/{FUNCTION_NAME}"
    log_stream_name: str = LOG_STREAM_NAME
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    @property
    def invoked_function_arn(self) -> str:
        region = os.environ.get("AWS_REGION", DEFAULT_REGION)
        return f"arn:aws:lambda:{region}:123456789012:function:{self.function_name}"

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
        function_name: str = FUNCTION_NAME,
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
