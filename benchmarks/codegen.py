"""Codegen for a large app, and the size of the client runtime every app ships.

    uv run python benchmarks/codegen.py [--actions 1000] [--events 200] [--repeats 5]

(gen)  build the registry (1,000 actions, 200 events, each with its own input and output
       models) and time generate(): schema.json + asyncapi.json + client.ts. Target: under
       2 s (median). Then the same with --python (client.py too: datamodel-code-generator
       writes the 2,400 models), timed on its own.
(size) the runtime part of client.ts compiled to JavaScript, minified and gzipped when esbuild
       is installed (clients/node_modules), else gzipped as compiled. Target: under 4 KB
       (openapi-fetch, a reference point, advertises 6 KB).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field, create_model

from mangum_ws import MangumWS
from mangum_ws.codegen import generate
from mangum_ws.codegen.client import runtime_source
from mangum_ws.codegen.schema import build_schema

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--python-repeats", type=int, default=3)
    args = parser.parse_args()

    started = time.perf_counter()
    ws = big_app(args.actions, args.events)
    registry_s = time.perf_counter() - started
    print(f"registry of {args.actions} actions + {args.events} events built in {registry_s:.2f} s")
    # The floor, measured in the same run: Pydantic's own JSON Schema generation for the same
    # models, which every output starts from.
    floor = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        build_schema(ws, "big")
        floor.append(time.perf_counter() - started)
    floor_median = statistics.median(floor)
    print(f"baseline, Pydantic's JSON Schema (build_schema): median {floor_median:.2f} s")
    files: dict[str, str] = {}
    for label, python, repeats in (
        ("schema.json + asyncapi.json + client.ts", False, args.repeats),
        ("... + client.py (--python)", True, args.python_repeats),
    ):
        timings = []
        for _ in range(repeats):
            started = time.perf_counter()
            files = generate(ws, "big", python=python)
            timings.append(time.perf_counter() - started)
        median = statistics.median(timings)
        print(
            f"generate() {label}: median {median:.2f} s over {repeats} runs, "
            f"{median / floor_median:.2f}x the baseline (target < 2 s: {median / 2:.2f}x)"
        )
    for name, content in sorted(files.items()):
        print(f"  {name}: {len(content.encode()) / 1024:.0f} KB")
    size, how = runtime_size()
    print(f"client runtime: {size / 1024:.2f} KB ({how}); target < 4 KB: {size / 4096:.2f}x")
    if shutil.which("node") is None:
        print("(node not found: the size is of the TypeScript source)")


if __name__ == "__main__":
    main()
