"""Codegen for a large app, and the size of the client runtime every app ships.

    uv run python benchmarks/codegen.py [--actions 1000] [--events 200] [--repeats 5]

(gen)  build the registry (1,000 actions, 200 events, each with its own input and output
       models), then time, in the same run (medians):
       - the baseline: Pydantic's own JSON Schema for the same models, one
         ``TypeAdapter.json_schemas`` call with Pydantic's stock generator, which every output
         starts from and which is not ours to make faster;
       - each output on its own: the catalogue (build_schema: Pydantic's schemas through our
         generator subclass, made portable), then schema.json, asyncapi.json and client.ts
         from that catalogue, and client.py (datamodel-code-generator writes the 2,400 models);
       - generate() as the CLI runs it: every output from one catalogue, without and with
         client.py. Target: under 2 s; each line says whether it meets it.
(size) the runtime part of client.ts compiled to JavaScript, minified and gzipped when esbuild
       is installed (clients/node_modules), else gzipped as compiled. Target: under 4 KB
       (openapi-fetch, a reference point, advertises 6 KB).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, create_model
from pydantic.json_schema import JsonSchemaMode

from mangum_ws import MangumWS
from mangum_ws.codegen import _json, generate
from mangum_ws.codegen.asyncapi import build_asyncapi
from mangum_ws.codegen.client import build_client, runtime_source
from mangum_ws.codegen.python import build_python_client
from mangum_ws.codegen.schema import REF_TEMPLATE, build_schema, schema_document

CLIENTS = Path(__file__).parent.parent / "clients"


def big_app(actions: int, events: int) -> MangumWS:
    ws = MangumWS()
    for i in range(actions):
        data_in: type[BaseModel] = create_model(
            f"Action{i}In",
            text=(str, Field(max_length=100)),
            count=(int, 0),
            tags=(list[str], []),
        )
        data_out: type[BaseModel] = create_model(f"Action{i}Out", ok=(bool, ...), id=(str, ...))

        async def handler(data: BaseModel) -> BaseModel:
            return data

        ws.action(f"group{i % 50}.action{i}", input=data_in, output=data_out)(handler)
    for i in range(events):
        model = create_model(f"Event{i}", value=(float, ...), note=(str | None, None))
        ws.event(f"event{i}", model)
    return ws


def runtime_size() -> tuple[int, str]:
    source = runtime_source()
    tsc = CLIENTS / "node_modules" / ".bin" / "tsc"
    esbuild = CLIENTS / "node_modules" / ".bin" / "esbuild"
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "runtime.ts").write_text(source)
        if esbuild.exists():
            out = subprocess.run(
                [
                    str(esbuild),
                    str(Path(tmp, "runtime.ts")),
                    "--minify",
                    "--format=esm",
                    "--target=es2022",
                ],
                capture_output=True,
                check=True,
            ).stdout
            return len(gzip.compress(out, 9)), "esbuild --minify, gzip -9"
        if tsc.exists():
            subprocess.run(
                [
                    str(tsc),
                    "--ignoreConfig",
                    "--target",
                    "es2022",
                    "--module",
                    "es2022",
                    "--removeComments",
                    "--rootDir",
                    tmp,
                    "--outDir",
                    tmp,
                    str(Path(tmp, "runtime.ts")),
                ],
                check=True,
                capture_output=True,
            )
            return len(gzip.compress(Path(tmp, "runtime.js").read_bytes(), 9)), (
                "tsc --removeComments (no minifier installed), gzip -9"
            )
    return len(gzip.compress(source.encode(), 9)), "TypeScript source (no tsc), gzip -9"


def _median(repeats: int, run: Callable[[], object]) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def pydantic_baseline(ws: MangumWS) -> None:
    """Pydantic's JSON Schema for every model the catalogue reads, stock generator, one call."""
    inputs: list[tuple[str, JsonSchemaMode, TypeAdapter[Any]]] = []
    for name, spec in ws.registry.actions.items():
        if spec.input_adapter is not None:
            inputs.append((name, "validation", spec.input_adapter))
        if spec.output_adapter is not None:
            inputs.append((name, "serialization", spec.output_adapter))
    for name, event in ws.registry.events.items():
        inputs.append((name, "serialization", event.adapter))
    TypeAdapter.json_schemas(inputs, by_alias=True, ref_template=REF_TEMPLATE)


def datamodel_share(catalogue: dict[str, Any]) -> tuple[float, float]:
    """One client.py: its seconds, and those spent inside datamodel-code-generator's
    generate() (the rest is ours: the schemas renamed for Python, the methods, the runtime)."""
    import datamodel_code_generator

    real = datamodel_code_generator.generate
    spent = 0.0

    def timed(*args: Any, **kwargs: Any) -> Any:
        nonlocal spent
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            spent += time.perf_counter() - started

    datamodel_code_generator.generate = timed  # python.py imports it at call time
    started = time.perf_counter()
    try:
        build_python_client(catalogue, "big")
    finally:
        datamodel_code_generator.generate = real
    return time.perf_counter() - started, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--python-repeats", type=int, default=3)
    parser.add_argument("--no-python", action="store_true", help="skip client.py (slow)")
    args = parser.parse_args()

    print(f"load average before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    started = time.perf_counter()
    ws = big_app(args.actions, args.events)
    registry_s = time.perf_counter() - started
    print(f"registry of {args.actions} actions + {args.events} events built in {registry_s:.2f} s")
    repeats = args.repeats
    baseline = _median(repeats, lambda: pydantic_baseline(ws))
    print(f"baseline, Pydantic's JSON Schema (stock generator): median {baseline:.2f} s")

    def line(label: str, median: float, runs: int, whole: bool = False) -> None:
        verdict = ""
        if whole:
            verdict = "  MEETS the 2 s target" if median < 2 else "  MISSES the 2 s target"
        print(
            f"  {label:<36} median {median:6.2f} s over {runs} runs, "
            f"{median / baseline:5.2f}x the baseline{verdict}"
        )

    catalogue = build_schema(ws, "big")
    print("each output on its own:")
    line("catalogue (build_schema)", _median(repeats, lambda: build_schema(ws, "big")), repeats)
    outputs: list[tuple[str, Callable[[], object], int]] = [
        ("schema.json", lambda: _json(schema_document(catalogue)), repeats),
        ("asyncapi.json", lambda: _json(build_asyncapi(catalogue)), repeats),
        ("client.ts", lambda: build_client(catalogue, "big"), repeats),
    ]
    for label, run, runs in outputs:
        line(label, _median(runs, run), runs)
    if not args.no_python:
        runs = args.python_repeats
        wholes, shares = zip(*(datamodel_share(catalogue) for _ in range(runs)), strict=True)
        line("client.py", statistics.median(wholes), runs)
        line("  of which datamodel-code-generator", statistics.median(shares), runs)
    print("generate(), every output from one catalogue (target < 2 s):")
    files: dict[str, str] = {}

    def whole(python: bool) -> None:
        nonlocal files
        files = generate(ws, "big", python=python)

    line("schema + asyncapi + client.ts", _median(repeats, lambda: whole(False)), repeats, True)
    if not args.no_python:
        runs = args.python_repeats
        line("... + client.py (--python)", _median(runs, lambda: whole(True)), runs, True)
    for name, content in sorted(files.items()):
        print(f"  {name}: {len(content.encode()) / 1024:.0f} KB")
    size, how = runtime_size()
    print(f"client runtime: {size / 1024:.2f} KB ({how}); target < 4 KB: {size / 4096:.2f}x")
    if shutil.which("node") is None:
        print("(node not found: the size is of the TypeScript source)")
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
