""".pre-commit-hooks.yaml: the hook pre-commit runs is the drift check, failing on stale files."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.processes import run

ROOT = Path(__file__).parent.parent


def read_hook(path: Path) -> dict[str, str]:
    """The one hook's ``key: value`` lines (a flat YAML mapping in a one-item list)."""
    lines = [line for line in path.read_text().splitlines() if line and line[0] != "#"]
    assert lines[0].startswith("- ")
    assert all(line.startswith("  ") for line in lines[1:])
    pairs = (line[2:].split(": ", 1) for line in lines)
    return {key: value for key, value in pairs}


def test_the_hook_runs_the_drift_check(tmp_path: Path) -> None:
    hook = read_hook(ROOT / ".pre-commit-hooks.yaml")
    assert hook["id"] == "mangum-ws-codegen"
    assert hook["pass_filenames"] == "false"
    assert hook["language"] == "system"  # it imports the app: the project's environment
    # pre-commit runs `entry` followed by the user's args, in the project's environment.
    entry = shlex.split(hook["entry"])
    assert entry[0] == "python"
    command = [sys.executable, *entry[1:], "tests.codegen_zoo:ws", "--out", str(tmp_path)]
    stale = run(command, timeout=120)
    assert stale.returncode == 1
    assert stale.stdout.splitlines()[-1] == (
        f"refresh with: python -m mangum_ws.codegen tests.codegen_zoo:ws --out {tmp_path}"
    )
    refresh = shlex.split(stale.stdout.splitlines()[-1].removeprefix("refresh with: "))
    done = subprocess.run(
        [sys.executable, *refresh[1:]], capture_output=True, check=False, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert run(command, timeout=120).returncode == 0
