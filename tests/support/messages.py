"""Client messages of wire protocol v1, as a test sends them."""

from __future__ import annotations

import json
from typing import Any


def call(action: str, id: str | None = None, data: Any = None) -> str:
    """``{"action": ..., "id": ..., "data": ...}`` as JSON text, leaving out what is None."""
    message: dict[str, Any] = {"action": action}
    if id is not None:
        message["id"] = id
    if data is not None:
        message["data"] = data
    return json.dumps(message)
