"""Pydantic's validation errors, cut down to what is safe and small enough to send back.

A 125 KB list of 25,000 invalid items gives 25,000 errors, and a dict key or a validator's
message can be the client's own input: the client gets the first few errors, each with its
strings cut to a short prefix, and never the input itself.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import ValidationError

from .limits import MAX_ECHO_CHARS

MAX_MESSAGE_CHARS: Final = 256
# A location path deeper than this keeps its first entries (nesting can reach 200 levels).
MAX_LOC_PARTS: Final = 16


def _short(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return _short(value if isinstance(value, str) else str(value))


def bounded_details(exc: ValidationError, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` errors as JSON-ready dicts: ``type``, ``loc``, ``msg``, ``ctx``."""
    details: list[dict[str, Any]] = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        loc = [part if isinstance(part, int) else _short(part) for part in error["loc"]]
        entry: dict[str, Any] = {
            "type": error["type"],
            "loc": loc[:MAX_LOC_PARTS],
            "msg": _short(error["msg"], MAX_MESSAGE_CHARS),
        }
        if "ctx" in error:
            entry["ctx"] = {key: _scalar(value) for key, value in error["ctx"].items()}
        details.append(entry)
    return details
