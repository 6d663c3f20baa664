"""Codegen from a MangumWS registry: schema.json, asyncapi.json, a typed TypeScript client
(client.ts) and, on request, a typed Python client (client.py).

python -m mangum_ws.codegen app:ws --out clients/app [--python] [--server NAME=URL] [--check]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from .asyncapi import build_asyncapi
from .client import build_client
from .schema import build_schema, schema_document
from .typescript import UnsupportedSchema

if TYPE_CHECKING:
    from ..app import MangumWS

__all__ = ["UnsupportedSchema", "generate", "stale_files", "write"]


def _json(document: Any) -> str:
    # pydantic-core's writer (Rust): json.dumps runs in pure Python as soon as it indents,
    # three times slower on these megabytes. Same text, floats' exponents aside (1e-07: 1e-7).
    return to_json(document, indent=2).decode() + "\n"


def generate(
    ws: MangumWS,
    title: str = "app",
    *,
    servers: Mapping[str, str] | None = None,
    query: Sequence[str] = (),
    python: bool = False,
) -> dict[str, str]:
    """File name -> content; byte-identical for the same registry and options, on any machine.

    ``servers`` (``{name: "wss://..."}``) and ``query`` (the names of the query parameters
    $connect reads) describe the deployment in asyncapi.json; ``python`` adds client.py,
    which needs datamodel-code-generator (the ``codegen`` extra).
    """
    catalogue = build_schema(ws, title)
    files = {
        "schema.json": _json(schema_document(catalogue)),
        "asyncapi.json": _json(build_asyncapi(catalogue, servers, query)),
        "client.ts": build_client(catalogue, title),
    }
    if python:
        from .python import build_python_client  # datamodel-code-generator: only when asked

        files["client.py"] = build_python_client(catalogue, title)
    return files


def stale_files(ws: MangumWS, out: Path | str, title: str = "app", **options: Any) -> list[Path]:
    """The generated files under ``out`` that are missing or differ from a fresh generation."""
    return _differing(generate(ws, title, **options), Path(out))


def _differing(files: dict[str, str], out: Path) -> list[Path]:
    return [
        out / name
        for name, content in files.items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != content
    ]


def write(ws: MangumWS, out: Path | str, title: str = "app", **options: Any) -> list[Path]:
    """Write the files that changed; return their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = generate(ws, title, **options)
    changed = _differing(files, out)
    for path in changed:
        path.write_text(files[path.name], encoding="utf-8", newline="\n")
    return changed
