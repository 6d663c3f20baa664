"""Background actions (``@ws.action(..., background=True)``): answered at once, run past the
MESSAGE invocation, their frames sent to the connection.

On Lambda the MESSAGE invocation validates the input, then hands the event to an asynchronous
invocation of the same function (Lambda's Invoke, ``InvocationType="Event"``), which runs the
action up to the function's own timeout instead of API Gateway's 29 s. In-process (``ws.mount``)
the action runs as a task of its own.

The payload of that invocation is sealed, because ``ws.handler`` must claim it and nothing
anyone else sends::

    {"mangum_ws.background": "<JSON text>", "mac": "<hex HMAC-SHA256 of that text>"}

The text holds the function's ARN, the time it was sealed and the MESSAGE event (its
requestContext and body). The key is ``MANGUM_WS_BACKGROUND_KEY`` (at least 32 characters);
the SAM template fills it from a secret it generates. No API Gateway, SQS or function URL event
has that shape, and a direct invocation cannot forge it without the key; a payload sealed for
another function, older than a connection can live (2 h) or not matching its MAC is refused
with 403 and one log line. docs/protocol.md ("Background actions") has the threat model.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

import anyio.to_thread
from pydantic_core import from_json

from .aws_clients import boto3_client
from .events import WebSocketEvent
from .limits import MAX_CONNECTION_AGE
from .protocol import encode
from .registry import ActionSpec

PAYLOAD_KEY: Final = "mangum_ws.background"
KEY_VARIABLE: Final = "MANGUM_WS_BACKGROUND_KEY"
MIN_KEY_CHARS: Final = 32
VERSION: Final = 1
# A sealed event older than this addresses a connection API Gateway has closed (2 h at most);
# the few minutes past it, and into the future, allow for clocks that differ a little.
MAX_AGE_SECONDS: Final = MAX_CONNECTION_AGE + 300
MAX_CLOCK_SKEW_SECONDS: Final = 300

Run = Callable[[], Awaitable[str | None]]


class Detach(Protocol):
    """Where a background action runs: given the action and the means to run it to its end
    (``run()`` returns its final frame), answer the MESSAGE now (None: nothing to say)."""

    async def __call__(self, spec: ActionSpec, request_id: str | None, run: Run) -> str | None: ...


class Forged(Exception):
    """A payload that claims to be a background invocation and cannot prove it."""


class NotLaunched(Exception):
    """The asynchronous invocation could not be started; the message says why."""


def is_background(event: Any) -> bool:
    """Whether ``event`` claims to be a background invocation (it may still be forged)."""
    return isinstance(event, dict) and PAYLOAD_KEY in event


def signing_key() -> bytes | None:
    """The function's key, from ``MANGUM_WS_BACKGROUND_KEY``; None when unset or too short."""
    key = os.environ.get(KEY_VARIABLE, "")
    return key.encode() if len(key) >= MIN_KEY_CHARS else None


def mac(key: bytes, text: str) -> str:
    """The hex HMAC-SHA256 of ``text`` under the function's key."""
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def verify(key: bytes, text: str, claimed: Any) -> None:
    """Forged unless ``claimed`` is the MAC of ``text`` under ``key``."""
    if not isinstance(claimed, str) or not claimed.isascii():
        raise Forged("it carries no MAC")
    try:
        expected = mac(key, text)
    except UnicodeEncodeError:
        raise Forged("it is not valid unicode text") from None
    if not hmac.compare_digest(expected, claimed):
        raise Forged("its MAC does not match")


def open_sealed(
    key: bytes, text: str, claimed: Any, version: int, now: float | None = None
) -> dict[str, Any]:
    """The JSON object ``text`` holds, when ``claimed`` is its MAC, it is of ``version`` and
    was sealed within a connection's lifetime; Forged if not. What else it must hold is the
    caller's to check."""
    verify(key, text, claimed)
    # From here on the text is ours: sealed by this function's deployment.
    try:
        sealed = from_json(text)
    except ValueError:
        sealed = None
    if (
        not isinstance(sealed, dict)
        or sealed.get("v") != version
        or not isinstance(sealed.get("issued"), int)
    ):
        raise Forged("it was sealed in another format")
    age = (time.time() if now is None else now) - sealed["issued"]
    if not -MAX_CLOCK_SKEW_SECONDS <= age <= MAX_AGE_SECONDS:
        raise Forged(f"it was sealed {int(age)} s ago, past any connection's lifetime")
    return sealed


def seal(event: WebSocketEvent, function_arn: str, key: bytes, now: float | None = None) -> bytes:
    """The payload of the asynchronous invocation that runs the action of ``event``."""
    text = encode(
        {
            "v": VERSION,
            "function": function_arn,
            "issued": int(time.time() if now is None else now),
            "event": {"requestContext": event.request_context, "body": event.body},
        }
    )
    return encode({PAYLOAD_KEY: text, "mac": mac(key, text)}).encode()


def unseal(
    payload: Mapping[str, Any], function_arn: Any, key: bytes | None, now: float | None = None
) -> dict[str, Any]:
    """The MESSAGE event inside a payload :func:`seal` made for this function; Forged if not."""
    if key is None:
        raise Forged(f"{KEY_VARIABLE} is not set (or shorter than {MIN_KEY_CHARS} characters)")
    text = payload.get(PAYLOAD_KEY)
    if set(payload) != {PAYLOAD_KEY, "mac"} or not isinstance(text, str):
        raise Forged("it is not shaped like a sealed payload")
    sealed = open_sealed(key, text, payload.get("mac"), VERSION, now)
    if not isinstance(sealed.get("event"), dict):
        raise Forged("it was sealed in another format")
    if sealed.get("function") != function_arn:
        raise Forged(f"it was sealed for another function ({sealed.get('function')!r})")
    event: dict[str, Any] = sealed["event"]
    return event


def function_arn_of(context: Any) -> str:
    arn = getattr(context, "invoked_function_arn", None)
    if not isinstance(arn, str) or not arn:
        raise NotLaunched("the Lambda context has no invoked_function_arn")
    return arn


class LambdaLauncher:
    """Lambda's Invoke API through a boto3 client built at the first launch, then reused.

    The endpoint is botocore's usual one for the region of the function's ARN, or
    ``AWS_ENDPOINT_URL_LAMBDA`` when set (the local API Gateway sets it to itself).
    """

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    def _client_for(self, function_arn: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    parts = function_arn.split(":")
                    region = parts[3] if len(parts) > 3 and parts[0] == "arn" else None
                    self._client = boto3_client(
                        "lambda", "background actions on Lambda", region=region or None
                    )
        return self._client

    def _launch_blocking(self, function_arn: str, payload: bytes) -> None:
        answer = self._client_for(function_arn).invoke(
            FunctionName=function_arn, InvocationType="Event", Payload=payload
        )
        body = answer.get("Payload")
        if body is not None:  # empty; read to its end, so its connection returns to the pool
            body.read()
            body.close()
        if answer.get("StatusCode") != 202:
            raise NotLaunched(f"Lambda answered {answer.get('StatusCode')} instead of 202")

    async def launch(self, function_arn: str, payload: bytes) -> None:
        """Queue an asynchronous invocation of ``function_arn``; raises when Lambda refuses."""
        await anyio.to_thread.run_sync(self._launch_blocking, function_arn, payload)
