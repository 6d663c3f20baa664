"""What can still be read of a message the JSON parser refused: its top-level ``id`` and
``action``, so that the ``bad_request`` reaches the call that is waiting for it.

A message whose ``data`` is nested 1,000 deep, or holds a ``NaN``, is refused as a whole by the
parser; its id is usually fine. This scans the top-level object only, stepping over nested values
by counting brackets (outside strings), and decodes just those two strings. It runs on the
error path alone, and gives up (returns nothing) at the first thing it does not understand.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic_core import from_json

_WANTED: Final = ("id", "action")
_SPACE: Final = " \t\r\n"
# What matters when stepping over a value: strings, brackets, and the comma that ends it.
_SIGNIFICANT: Final = re.compile(r'["\[\]{},]')


def _string_end(text: str, start: int) -> int:
    """The index just past the JSON string that starts at ``text[start] == '"'``."""
    i = start + 1
    while True:
        quote = text.index('"', i)  # ValueError when unterminated
        backslashes = 0
        j = quote - 1
        while text[j] == "\\":
            backslashes += 1
            j -= 1
        if backslashes % 2 == 0:
            return quote + 1
        i = quote + 1


def _value_end(text: str, start: int) -> int:
    """The index just past the value that starts at ``start`` (any JSON value, or a bare token
    such as ``NaN``), stepping over nested objects and arrays."""
    if text[start] == '"':
        return _string_end(text, start)
    depth = 0
    i = start
    while True:
        match = _SIGNIFICANT.search(text, i)
        if match is None:
            raise ValueError("unterminated value")
        i = match.start()
        char = text[i]
        if char == '"':
            i = _string_end(text, i)
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            if depth == 0:
                return i
            depth -= 1
            if depth == 0:
                return i + 1
        elif char == "," and depth == 0:
            return i
        i += 1


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in _SPACE:
        i += 1
    return i


def salvage(text: str) -> dict[str, str]:
    """The top-level string ``id`` and ``action`` of ``text``, where they can be read."""
    found: dict[str, str] = {}
    try:
        i = _skip_space(text, 0)
        if text[i] != "{":
            return {}
        i = _skip_space(text, i + 1)
        while text[i] != "}":
            end = _string_end(text, i)
            key = from_json(text[i:end])
            i = _skip_space(text, end)
            if text[i] != ":":
                return found
            i = _skip_space(text, i + 1)
            end = _value_end(text, i)
            if key in _WANTED and text[i] == '"':
                try:
                    found[key] = from_json(text[i:end])
                except (ValueError, TypeError):  # this one is unreadable: the other may not be
                    found.pop(key, None)
            i = _skip_space(text, end)
            if text[i] == ",":
                i = _skip_space(text, i + 1)
            elif text[i] != "}":
                return found
    except (ValueError, IndexError, TypeError):  # TypeError: from_json refusing a surrogate
        pass
    return found
