"""One message in, the caller's reply frame out: the message half of the event core.

It knows no sockets and no boto3, and it never raises: whatever the client sent and whatever
the handler did, the caller gets a frame of at most 128 KB (or none, when there is nothing
to say), and a crash leaves exactly one log record with its traceback.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.to_thread
from pydantic import ValidationError
from pydantic_core import from_json
from starlette.exceptions import HTTPException

from .background import Detach, Run
from .connection import Connection
from .depends import Resolver
from .errors import ActionError
from .limits import MAX_ERROR_BYTES, MAX_ERROR_DETAILS, MAX_ID_CHARS, MAX_JSON_DEPTH, fits
from .protocol import (
    CANCEL,
    HELLO,
    KEEPALIVE,
    ErrorCode,
    echo,
    error_frame,
    internal_error,
    result_frame,
    wire_name,
)
from .registry import ActionSpec, Registry
from .salvage import salvage
from .streams import StreamSupport, cancel, run_stream
from .validation_errors import bounded_details

logger = logging.getLogger("mangum_ws")

# (connection, id, data) -> the answer to a $hello (sessions.hello, bound by the event core).
Hello = Callable[[Connection, str | None, Any], Coroutine[Any, Any, str | None]]


async def call(func: Callable[..., Any], is_async: bool, *args: Any, **kwargs: Any) -> Any:
    """Await an async handler; run a sync one in a worker thread so the loop never blocks."""
    if is_async:
        return await func(*args, **kwargs)
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))


def _why(exc: ValueError) -> str:
    reason = str(exc)
    if isinstance(exc, UnicodeEncodeError):
        return "message is not valid unicode text"
    if "recursion limit" in reason:
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    if "surrogate" in reason or "escape" in reason or "unicode" in reason:
        return f"message is not valid JSON text ({reason})"
    return "message is not valid JSON"


def _unreadable(body: str, exc: ValueError) -> str:
    """The bad_request for a message the parser refused, with its id and action when they
    can still be read: the call waiting for an answer gets one."""
    found = salvage(body)
    request_id = found.get("id")
    if request_id is not None and len(request_id) > MAX_ID_CHARS:
        request_id = None
    return error_frame(
        ErrorCode.BAD_REQUEST,
        _why(exc),
        request_id=request_id,
        action=wire_name(found.get("action")),
    )


def parse(body: str | None) -> dict[str, Any] | str:
    """The message as a JSON object, or the bad_request frame saying why it is not one."""
    if not body:
        return error_frame(ErrorCode.BAD_REQUEST, "message must be a JSON object")
    try:
        # pydantic-core's parser: strict JSON, refuses lone surrogates and deep nesting, and
        # is several times faster than json.loads on small messages.
        message = from_json(body.encode(), allow_inf_nan=False)
    except ValueError as exc:  # UnicodeEncodeError (a lone surrogate in the text) is one
        return _unreadable(body, exc)
    if not isinstance(message, dict):
        return error_frame(ErrorCode.BAD_REQUEST, "message must be a JSON object")
    return message


async def dispatch(
    registry: Registry,
    body: str | None,
    conn: Connection,
    streams: StreamSupport | None = None,
    detach: Detach | None = None,
    hello: Hello | None = None,
) -> str | None:
    """Handle one message; return the frame for the caller, or None when there is nothing to say.

    A stream sends its chunks through ``streams.send`` and returns the frame that ends it. A
    background action, once its input is valid, is handed to ``detach`` (without one, it runs
    here: the invocation that ``detach`` started on Lambda).
    """
    message = parse(body)
    if isinstance(message, str):
        return message
    request_id = message.get("id")
    action = message.get("action")
    if request_id is not None and (
        not isinstance(request_id, str) or len(request_id) > MAX_ID_CHARS
    ):
        return error_frame(
            ErrorCode.BAD_REQUEST,
            f"'id' must be a string of at most {MAX_ID_CHARS} characters",
            action=wire_name(action),
        )
    if action == KEEPALIVE:
        return None  # the generated clients' idle-timeout guard: read, and not answered
    if action == CANCEL and streams is not None:
        run = functools.partial(cancel, streams, conn, request_id)
        return await guarded(run, conn, request_id, CANCEL, "$cancel")
    if action == HELLO and hello is not None:
        greet = functools.partial(hello, conn, request_id, message.get("data"))
        return await guarded(greet, conn, request_id, HELLO, "$hello")
    spec = registry.routes.get(conn.route_key) if conn.route_key[:1] != "$" else None
    if spec is None and isinstance(action, str):
        spec = registry.actions.get(action) or registry.routes.get(action)
    if spec is None:
        return await guarded(
            functools.partial(unclaimed, registry, message, request_id, action, conn),
            conn,
            request_id,
            wire_name(action),
            "on_message hook",
        )
    data = message.get("data", {})
    return await guarded(
        functools.partial(run_action, spec, data, request_id, conn, streams, detach),
        conn,
        request_id,
        spec.name,
    )


async def guarded(
    run: Run, conn: Connection, request_id: str | None, name: str | None, what: str | None = None
) -> str | None:
    """``run()``'s frame, or internal_error when it raised or its frame is over 128 KB."""
    try:
        frame = await run()
    except Exception:
        logger.exception(
            "%s failed for connection %s", what or f"action {name!r}", conn.connection_id
        )
        return internal_error(request_id, name)
    if frame is not None and not fits(frame):
        logger.error(
            "the reply of action %r to connection %s is over API Gateway's 128 KB; "
            "the caller got internal_error instead",
            name,
            conn.connection_id,
        )
        return internal_error(request_id, name)
    return frame


async def unclaimed(
    registry: Registry,
    message: dict[str, Any],
    request_id: str | None,
    action: Any,
    conn: Connection,
) -> str | None:
    """A message no action claims: the on_message hook's, or an error for the caller."""
    hook = registry.on_message
    if hook is not None:
        await call(
            hook.func, hook.is_async, conn if hook.wants_connection else conn.connection_id, message
        )
        return None
    if not isinstance(action, str):
        return error_frame(
            ErrorCode.BAD_REQUEST, "message needs a string 'action' field", request_id=request_id
        )
    return error_frame(
        ErrorCode.UNKNOWN_ACTION,
        f"unknown action {echo(action)}",
        request_id=request_id,
        action=wire_name(action),
    )


def invalid_input(spec: ActionSpec, exc: ValidationError, request_id: str | None) -> str:
    """An invalid_input frame of bounded size: the first few of Pydantic's errors, none of the
    client's input repeated past a short prefix, and the message says how many there were."""
    count = exc.error_count()
    details = bounded_details(exc, MAX_ERROR_DETAILS)
    while True:
        shown = len(details)
        message = f"invalid data for {spec.name!r}"
        if shown < count:
            message += f": {count} errors, the first {shown} in details"
        frame = error_frame(
            ErrorCode.INVALID_INPUT,
            message,
            request_id=request_id,
            action=spec.name,
            details=details,
        )
        if not details or fits(frame, MAX_ERROR_BYTES):
            return frame
        details = details[: shown // 2]


async def run_action(
    spec: ActionSpec,
    data: Any,
    request_id: str | None,
    conn: Connection,
    streams: StreamSupport | None = None,
    detach: Detach | None = None,
) -> str | None:
    kwargs: dict[str, Any] = {}
    if spec.input_adapter is not None and spec.input_param is not None:
        try:
            kwargs[spec.input_param] = spec.input_adapter.validate_python(data)
        except ValidationError as exc:
            return invalid_input(spec, exc, request_id)
    if spec.connection_param is not None:
        kwargs[spec.connection_param] = conn
    if spec.stream and request_id is None:
        return error_frame(
            ErrorCode.BAD_REQUEST,
            f"{spec.name!r} is a stream: call it with an 'id'",
            action=spec.name,
        )
    if spec.background and detach is not None:
        run = functools.partial(execute, spec, kwargs, request_id, conn, streams)
        return await detach(
            spec, request_id, functools.partial(guarded, run, conn, request_id, spec.name)
        )
    return await execute(spec, kwargs, request_id, conn, streams)


async def execute(
    spec: ActionSpec,
    kwargs: dict[str, Any],
    request_id: str | None,
    conn: Connection,
    streams: StreamSupport | None,
) -> str | None:
    """Run the action with its validated arguments and its dependencies; return its final
    frame. ``yield`` dependencies close once the action (or its stream) has ended."""
    if not spec.dependencies:
        return await _run(spec, kwargs, request_id, conn, streams)
    try:
        async with contextlib.AsyncExitStack() as stack:
            resolver = Resolver(conn, stack)
            kwargs = dict(kwargs)
            for name, dependency in spec.dependencies:
                value = await resolver.solve(dependency)
                if name is not None:
                    kwargs[name] = value
            return await _run(spec, kwargs, request_id, conn, streams)
    except ActionError as exc:  # a guard's refusal (Forbidden, Unauthorized, any ActionError)
        return refused(exc, request_id, spec.name)
    except HTTPException as exc:  # a FastAPI dependency's own refusal
        code = _HTTP_CODES.get(exc.status_code)
        if code is None:
            raise
        return error_frame(code, str(exc.detail), request_id=request_id, action=spec.name)


def refused(exc: ActionError, request_id: str | None, action: str) -> str:
    """The error frame of an ActionError (an action's, or a guard's)."""
    return error_frame(
        exc.code, exc.message, request_id=request_id, action=action, details=exc.details
    )


# FastAPI dependencies refuse with HTTPException; these two have a protocol error code.
_HTTP_CODES = {401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN}


async def _run(
    spec: ActionSpec,
    kwargs: dict[str, Any],
    request_id: str | None,
    conn: Connection,
    streams: StreamSupport | None,
) -> str | None:
    if spec.stream:
        assert request_id is not None  # run_action refused a stream without an id
        if streams is None:  # only a direct call of dispatch() lacks them
            raise RuntimeError("a stream needs somewhere to send its chunks")
        return await run_stream(spec, kwargs, request_id, conn, streams)

    try:
        result = await call(spec.func, spec.is_async, **kwargs)
    except ActionError as exc:
        return refused(exc, request_id, spec.name)

    if spec.output_adapter is None:
        if result is not None:
            logger.warning(
                "action %r returned a value but declares no output model; nothing was sent",
                spec.name,
            )
        return None if request_id is None else result_frame(request_id, spec.name, None)
    try:
        output = spec.output_adapter.validate_python(result)
    except ValidationError as exc:
        logger.error(
            "action %r returned a value that does not fit its output %r:\n%s",
            spec.name,
            spec.output_type,
            exc,
        )
        return internal_error(request_id, spec.name)
    return result_frame(request_id, spec.name, output)
