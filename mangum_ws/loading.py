"""``MODULE:ATTRIBUTE`` targets, imported the way uvicorn does, for the command-line tools."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


class LoadError(Exception):
    """The target cannot be imported; the message is one line for the user."""


def load_attribute(target: str, app_dir: str = ".") -> Any:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise LoadError(f"expected MODULE:ATTRIBUTE, got {target!r}")
    path = os.path.abspath(app_dir)
    if path not in sys.path:
        sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise LoadError(f"module {module_name!r} not found (looked in {path})") from exc
        raise
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise LoadError(f"module {module_name!r} has no attribute {attribute!r}")
        value = getattr(value, part)
    return value


def mangum_handlers(module_name: str, ws: Any = None) -> list[str]:
    """The names of an imported module's Mangum handlers (those serving ``ws``, when given)."""
    from mangum import Mangum

    module = sys.modules.get(module_name)
    return [
        name
        for name, value in vars(module or object()).items()
        if isinstance(value, Mangum)
        and (ws is None or any(getattr(c, "mangum_ws", None) is ws for c in value.custom_handlers))
    ]
