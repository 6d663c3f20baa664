"""Codegen: schema.json and a typed TypeScript client (client.ts) from a MangumWS registry.

python -m mangum_ws.codegen app:ws --out clients/app [--check]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .client import build_client
from .schema import build_schema, schema_document
from .typescript import UnsupportedSchema

if TYPE_CHECKING:
    from ..app import MangumWS

__all__ = ["UnsupportedSchema", "generate", "stale_files", "write"]


def generate(ws: MangumWS, title: str = "app") -> dict[str, str]:
    """File name -> content; byte-identical for the same registry, on any machine."""
    schema = build_schema(ws, title)
    return {
        "schema.json": json.dumps(schema_document(schema), indent=2, ensure_ascii=False) + "\n",
        "client.ts": build_client(schema, title),
    }


def stale_files(ws: MangumWS, out: Path | str, title: str = "app") -> list[Path]:
    """The generated files under ``out`` that are missing or differ from a fresh generation."""
    out = Path(out)
    return [
        out / name
        for name, content in generate(ws, title).items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != content
    ]


def write(ws: MangumWS, out: Path | str, title: str = "app") -> list[Path]:
    """Write the files that changed; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    changed = stale_files(ws, out, title)
    files = generate(ws, title)
    for path in changed:
        path.write_text(files[path.name], encoding="utf-8", newline="\n")
    return changed
