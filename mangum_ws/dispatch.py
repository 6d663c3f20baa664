"""One dispatch for every path: a raw message in, the caller's reply frame out.

It knows no sockets and no boto3: the Lambda bridge and the local endpoint both call it with
the message body and a Connection, and deliver what it returns to the caller.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from pydantic import ValidationError

from .connection import Connection
from .errors import ActionError
from .protocol import KEEPALIVE, MAX_MESSAGE_BYTES, ErrorCode, error_frame, result_frame
from .registry import ActionSpec, Registry

logger = logging.getLogger("mangum_ws")


async def call(func: Callable[..., Any], is_async: bool, *args: Any, **kwargs: Any) -> Any:
    """Await an async handler; run a sync one in a worker thread so the loop never blocks."""
    if is_async:
        return await func(*args, **kwargs)
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))


def validation_details(exc: ValidationError) -> list[Any]:
    """Pydantic's errors as JSON, without the offending input echoed back to the client."""
    details: list[Any] = json.loads(exc.json(include_input=False, include_url=False))
    return details


async def dispatch(registry: Registry, body: str | bytes | None, conn: Connection) -> str | None:
    """Handle one message; return the frame for the caller, or None when there is nothing to say."""
    size = len(body.encode() if isinstance(body, str) else body or b"")
    if size > MAX_MESSAGE_BYTES:
        return error_frame(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"message of {size} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes",
        )
    try:
        message = json.loads(body) if body else None
    except ValueError:
        return error_frame(ErrorCode.BAD_REQUEST, "message is not valid JSON")
    if not isinstance(message, dict):
        return error_frame(ErrorCode.BAD_REQUEST, "message must be a JSON object")

    request_id = message.get("id")
    action = message.get("action")
    if request_id is not None and not isinstance(request_id, str):
        return error_frame(
            ErrorCode.BAD_REQUEST,
            "'id' must be a string",
            action=action if isinstance(action, str) else None,
        )

    if action == KEEPALIVE:
        return None  # the generated clients' idle-timeout guard: read, and not answered
    spec = registry.routes.get(conn.route_key) if conn.route_key[:1] != "$" else None
    if spec is None and isinstance(action, str):
        spec = registry.actions.get(action) or registry.routes.get(action)
    if spec is None:
        if registry.on_message is not None:
            hook = registry.on_message
            who = conn if hook.wants_connection else conn.connection_id
            try:
                await call(hook.func, hook.is_async, who, message)
            except Exception:
                logger.exception("on_message hook failed for connection %s", conn.connection_id)
                return error_frame(
                    ErrorCode.INTERNAL_ERROR,
                    "internal error",
                    request_id=request_id,
                    action=action if isinstance(action, str) else None,
                )
            return None
        if not isinstance(action, str):
            return error_frame(
                ErrorCode.BAD_REQUEST,
                "message needs a string 'action' field",
                request_id=request_id,
            )
        return error_frame(
            ErrorCode.UNKNOWN_ACTION,
            f"unknown action {action!r}",
            request_id=request_id,
            action=action,
        )
    return await run_action(spec, message.get("data", {}), request_id, conn)


async def run_action(
    spec: ActionSpec, data: Any, request_id: str | None, conn: Connection
) -> str | None:
    kwargs: dict[str, Any] = {}
    if spec.input_adapter is not None and spec.input_param is not None:
        try:
            kwargs[spec.input_param] = spec.input_adapter.validate_python(data)
        except ValidationError as exc:
            return error_frame(
                ErrorCode.INVALID_INPUT,
                f"invalid data for {spec.name!r}",
                request_id=request_id,
                action=spec.name,
                details=validation_details(exc),
            )
    if spec.connection_param is not None:
        kwargs[spec.connection_param] = conn

    try:
        result = await call(spec.func, spec.is_async, **kwargs)
    except ActionError as exc:
        return error_frame(
            exc.code, exc.message, request_id=request_id, action=spec.name, details=exc.details
        )
    except Exception:
        logger.exception("action %r failed for connection %s", spec.name, conn.connection_id)
        return error_frame(
            ErrorCode.INTERNAL_ERROR, "internal error", request_id=request_id, action=spec.name
        )

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
        return error_frame(
            ErrorCode.INTERNAL_ERROR, "internal error", request_id=request_id, action=spec.name
        )
    return result_frame(request_id, spec.name, output)
