"""Cold start: importing mangum-ws and building the chat app for Lambda, against fastapi+mangum.

    uv run python benchmarks/coldstart.py [--runs 15]

Each variant runs in a fresh interpreter, timed from inside (perf_counter around the imports),
so interpreter start-up is left out; the figure is the median of the runs.
(base) import fastapi, mangum
(ours) import mangum_ws, then build examples/demochat.py with APIGW_MANAGEMENT_URL set (the
       Lambda case); boto3/botocore must not be imported before the first send.
Target: ours <= 1.05x base.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parent.parent / "examples" / "demochat.py"

BASE = """
import time; t = time.perf_counter()
import fastapi, mangum
elapsed = time.perf_counter() - t
import json, sys; print(json.dumps([elapsed, "botocore" in sys.modules]))
"""

OURS = f"""
import time; t = time.perf_counter()
import importlib.util
import mangum_ws
spec = importlib.util.spec_from_file_location("demochat", {str(DEMO)!r})
demo = importlib.util.module_from_spec(spec); spec.loader.exec_module(demo)
elapsed = time.perf_counter() - t
import json, sys
assert not demo.ws.is_local
print(json.dumps([elapsed, "botocore" in sys.modules]))
"""


def run(code: str) -> tuple[float, bool]:
    env = {
        **os.environ,
        "APIGW_MANAGEMENT_URL": "https://abc.execute-api.us-east-1.amazonaws.com/prod",
    }
    # A deployed package has its bytecode compiled (pip does it at install); without this, a
    # source file edited since its .pyc was written is compiled again on every run here.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    ).stdout
    elapsed, aws_loaded = json.loads(out)
    return float(elapsed), bool(aws_loaded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    base, ours, aws_sdk_seen = [], [], False
    run(BASE), run(OURS)  # warm-up, not counted: writes any stale .pyc, fills the OS cache
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        base.append(run(BASE)[0])
        elapsed, loaded = run(OURS)
        ours.append(elapsed)
        aws_sdk_seen |= loaded
    b, o = statistics.median(base), statistics.median(ours)
    print(f"(base) import fastapi, mangum           {b * 1000:8.1f} ms")
    print(f"(ours) import mangum_ws + chat app      {o * 1000:8.1f} ms")
    print(f"ours / base = {o / b:.3f}   (target <= 1.05)   botocore imported: {aws_sdk_seen}")


if __name__ == "__main__":
    main()
