"""What every command-line tool shares: --help gives each option's default, bad usage is one
``error:`` line and exit 2 (exit 1 is only codegen --check's "stale")."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import processes

ROOT = Path(__file__).parent.parent
PY = sys.executable
CLIS = {
    "codegen": [PY, "-m", "mangum_ws.codegen"],
    "local": [PY, "-m", "mangum_ws.local"],
    "deploy": [PY, "-m", "mangum_ws.deploy"],
    "demo": [PY, "examples/demochat.py"],
}


def run(command: list[str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return processes.run([*command, *args], env={**os.environ, **env})


def option_helps(help_text: str) -> dict[str, str]:
    """``--option`` -> its help text, from argparse's "options:" section."""
    section = help_text.split("\noptions:\n", 1)[1]
    helps: dict[str, str] = {}
    for block in re.split(r"\n(?=  -)", section):
        names = re.findall(r"--[\w-]+", block.split("  ", 2)[1] if "  " in block else block)
        if names and names[0] != "--help":
            helps[names[0]] = " ".join(block.split())
    return helps


@pytest.mark.parametrize("cli", sorted(CLIS))
def test_help_gives_every_options_default(cli: str) -> None:
    result = run(CLIS[cli], "--help")
    assert result.returncode == 0
    helps = option_helps(result.stdout)
    if cli == "demo":
        assert helps == {}
        assert "HOST:PORT from the environment (default 127.0.0.1:8000)" in result.stdout
        return
    assert helps
    for option, text in helps.items():
        assert "default" in text or text.endswith("(required)"), f"{cli} {option}: {text}"


def test_help_names_the_emulators_defaults() -> None:
    helps = option_helps(run(CLIS["local"], "--help").stdout)
    assert "(default: 3001)" in helps["--port"]
    assert "(default: 127.0.0.1)" in helps["--host"]
    assert "(default: what the MangumWS behind the handler says" in helps["--route-responses"]
    assert "(default: 600.0)" in helps["--idle-timeout"]


@pytest.mark.parametrize("cli", sorted(CLIS))
def test_an_unknown_option_is_one_line_and_exit_2(cli: str) -> None:
    result = run(CLIS[cli], "--no-such-option")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    assert "--no-such-option" in line or "required" in line
    assert line.endswith("--help)")


@pytest.mark.parametrize("cli", ["codegen", "deploy"])
def test_a_missing_option_is_one_line_and_exit_2(cli: str) -> None:
    result = run(CLIS[cli], "demochat:ws", "--app-dir", "examples")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "the following arguments are required: --" in line


def test_the_demos_busy_port_is_one_line_suggesting_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(CLIS["demo"], PORT=str(port))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert re.fullmatch(
        rf"error: port {port} on 127.0.0.1 is in use: pick another with PORT=\d+", line
    )


def test_the_demos_bad_port_is_one_line() -> None:
    result = run(CLIS["demo"], PORT="eighty")
    assert result.returncode == 2
    assert result.stderr == "error: PORT must be a port number (0 for any free one), not 'eighty'\n"


def test_the_demo_prints_its_url_once_it_accepts(tmp_path: Path) -> None:
    import urllib.request

    demo = processes.Background(CLIS["demo"], env={**os.environ, "PORT": "0"}, log=tmp_path / "log")
    try:
        line = demo.first_line()
        match = re.fullmatch(
            r"Chat demo: (http://127\.0\.0\.1:\d+/)  \(open it in two tabs\)", line
        )
        assert match, line
        with urllib.request.urlopen(match.group(1), timeout=5) as page:
            assert b"mangum-ws chat" in page.read()
    finally:
        demo.output()
