"""Command-line tools run as a user runs them: in a subprocess, from the checkout."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def run(
    argv: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run to the end; the exit code is the caller's to check."""
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def without_aws(home: Path, **extra: str) -> dict[str, str]:
    """A machine that has never seen AWS: this environment less every AWS_* variable, with HOME
    an empty directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    home.mkdir(exist_ok=True)
    return {**env, "HOME": str(home), **extra}


class Background:
    """A server started in a subprocess: stdout is a pipe (its first line, the URL, is read as
    soon as it is printed), stderr a log file."""

    def __init__(self, argv: list[str], *, env: dict[str, str], log: Path, cwd: Path = ROOT):
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
            )

    def first_line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, self.output()
        return line.strip()

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.log.read_text().count(text) < count:
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.05)

    def output(self) -> str:
        """Stop it (if it still runs); everything it printed, stdout then the log."""
        assert self.process.stdout is not None
        if self.process.stdout.closed:
            return self.log.read_text()
        if self.process.poll() is None:
            self.process.terminate()
        stdout = self.process.stdout.read()
        self.process.wait(timeout=20)
        self.process.stdout.close()
        return stdout + self.log.read_text()
