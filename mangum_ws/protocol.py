"""Wire protocol v1: the frames exchanged between clients and the server.

Client to server, one JSON text frame per request (``action`` is top level so API Gateway's
route selection expression ``$request.body.action`` can route it)::

    {"action": "chat.send", "id": "c1", "data": {...}}

Server to client, always a JSON object with a ``type``::

    {"type": "result", "id": "c1", "action": "chat.send", "data": {...}}
    {"type": "error", "id": "c1" | null, "action": "chat.send" | null,
     "error": {"code": "...", "message": "...", "details": ... | null}}
    {"type": "event", "event": "chat.message", "data": {...}}
    {"type": "chunk", "id": "c1", "action": "llm.complete", "seq": 0, "data": {...}}
    {"type": "event", "event": "feed.item", "topic": "feed", "seq": 42, "data": {...}}

The full reference is docs/protocol.md.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final

from pydantic_core import from_json, to_json

from .limits import MAX_ECHO_CHARS, MAX_MESSAGE_BYTES, MAX_NAME_CHARS

__all__ = [
    "CANCEL",
    "HELLO",
    "KEEPALIVE",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "ErrorCode",
    "chunk_frame",
    "echo",
    "encode",
    "encode_payload",
    "error_frame",
    "event_frame",
    "internal_error",
    "result_frame",
    "select_route",
    "topic_event_frame",
    "wire_name",
]

PROTOCOL_VERSION: Final = 1

# Sent by clients to stay under API Gateway's 10-minute idle timeout; never answered.
KEEPALIVE: Final = "$keepalive"
# {"action": "$cancel", "id": <a running stream's id>} stops that stream.
CANCEL: Final = "$cancel"
# {"action": "$hello", "id": ..., "data": {"session", "since", "schema"}}: the generated clients'
# first message on every connection; it resumes a session (docs/protocol.md, "Sessions").
HELLO: Final = "$hello"


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_INPUT = "invalid_input"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    CANCELLED = "cancelled"
    INTERNAL_ERROR = "internal_error"


def echo(text: str) -> str:
    """A client's own text, quoted for an error message: never more than a short prefix."""
    if len(text) <= MAX_ECHO_CHARS:
        return repr(text)
    return f"{text[:MAX_ECHO_CHARS]!r}... ({len(text)} characters)"


def wire_name(action: Any) -> str | None:
    """What an error frame's ``action`` may repeat of the client's: a short string, or None."""
    return action if isinstance(action, str) and len(action) <= MAX_NAME_CHARS else None


def encode(value: Any) -> str:
    """JSON text for a frame; Pydantic models inside are dumped by their wire (alias) names."""
    return to_json(value, by_alias=True).decode()


def result_frame(request_id: str | None, action: str, data: Any) -> str:
    return encode({"type": "result", "id": request_id, "action": action, "data": data})


def error_frame(
    code: str,
    message: str,
    *,
    request_id: str | None = None,
    action: str | None = None,
    details: Mapping[str, Any] | Sequence[Any] | None = None,
) -> str:
    return encode(
        {
            "type": "error",
            "id": request_id,
            "action": action,
            "error": {"code": code, "message": message, "details": details},
        }
    )


def chunk_frame(request_id: str, action: str, seq: int, data: Any) -> str:
    return encode({"type": "chunk", "id": request_id, "action": action, "seq": seq, "data": data})


def internal_error(request_id: str | None, action: str | None) -> str:
    """What the caller gets for anything that went wrong on the server: nothing about it."""
    return error_frame(
        ErrorCode.INTERNAL_ERROR, "internal error", request_id=request_id, action=action
    )


def event_frame(event: str, data: Any) -> str:
    return encode({"type": "event", "event": event, "data": data})


def topic_event_frame(event: str, topic: str, seq: int, data: Any) -> str:
    """An event published to a topic: ``seq`` numbers the topic's events, 1, 2, 3, ..."""
    return encode({"type": "event", "event": event, "topic": topic, "seq": seq, "data": data})


def encode_payload(data: Any) -> bytes:
    """What ``send`` puts on the wire: text as is, anything else as JSON."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode()
    return to_json(data, by_alias=True)


def select_route(
    body: str | bytes | None,
    route_keys: Collection[str],
    path: Sequence[str] = ("action",),
) -> str:
    """API Gateway's route selection for ``$request.body.<path>`` (default: ``action``).

    The value at ``path`` selects a custom route key when one is defined; anything else (no
    JSON, no such field, no such route) goes to ``$default``.
    """
    if not route_keys or not body:
        return "$default"
    try:
        # pydantic-core's parser, as dispatch uses: no RecursionError on deep nesting.
        value: Any = from_json(body.encode() if isinstance(body, str) else body)
    except (ValueError, UnicodeEncodeError):
        return "$default"
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return "$default"
        value = value[part]
    if isinstance(value, str) and value in route_keys:
        return value
    return "$default"
