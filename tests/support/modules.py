"""Running a Python file as a fresh module: each call starts from empty module state."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DEMO = Path(__file__).parent.parent.parent / "examples" / "demochat.py"


def load_fresh(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # Pydantic resolves the module's annotations through it
    spec.loader.exec_module(module)
    return module


def load_demo(name: str = "demochat_under_test") -> ModuleType:
    """A fresh chat demo: its rooms live in module state."""
    return load_fresh(DEMO, name)
