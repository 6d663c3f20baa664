"""The README's examples run as written: each Python block is executed, then driven for real."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.support.demo_auth import signed_in
from tests.support.processes import ROOT, Background, free_port
from tests.support.server import serve

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def run_block(index: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.delenv("APIGW_MANAGEMENT_URL", raising=False)
    namespace: dict[str, Any] = {"__name__": f"readme_block_{index}"}
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)
    return namespace


def test_readme_has_the_examples() -> None:
    assert len(BLOCKS) == 3


def test_typed_quick_start(monkeypatch: pytest.MonkeyPatch) -> None:
    example = run_block(0, monkeypatch)
    with serve(example["app"]) as address, connect(f"ws://{address}/") as client:
        client.send(
            json.dumps({"action": "chat.send", "id": "1", "data": {"room": "lobby", "text": "hi"}})
        )
        assert json.loads(client.recv(timeout=5))["error"]["code"] == "no_such_room"
        client.send(json.dumps({"action": "chat.join", "data": {"room": "lobby", "text": ""}}))
        client.send(
            json.dumps({"action": "chat.send", "id": "2", "data": {"room": "lobby", "text": "hi"}})
        )
        frames = [json.loads(client.recv(timeout=5)) for _ in range(2)]
    assert {
        "type": "event",
        "event": "chat.message",
        "data": {"room": "lobby", "text": "hi"},
    } in frames
    assert {
        "type": "result",
        "id": "2",
        "action": "chat.send",
        "data": {"message_id": "m-1"},
    } in frames


def test_seed_quick_start(monkeypatch: pytest.MonkeyPatch) -> None:
    example = run_block(1, monkeypatch)
    with (
        serve(example["app"]) as address,
        connect(f"ws://{address}/") as a,
        connect(f"ws://{address}/") as b,
    ):
        a.send(json.dumps({"action": "say", "text": "hello"}))
        for client in (a, b):
            frame = json.loads(client.recv(timeout=5))
            assert frame["action"] == "say"
            assert frame["text"] == "hello"


def test_streams_example(monkeypatch: pytest.MonkeyPatch) -> None:
    example = run_block(2, monkeypatch)
    call = {"action": "llm.complete", "id": "s", "data": {"text": "one two three"}}
    with serve(example["app"]) as address, connect(f"ws://{address}/") as client:
        client.send(json.dumps(call))
        frames = [json.loads(client.recv(timeout=5)) for _ in range(4)]
    assert [(f["type"], f.get("seq"), f["data"]) for f in frames] == [
        ("chunk", 0, {"text": "one"}),
        ("chunk", 1, {"text": "two"}),
        ("chunk", 2, {"text": "three"}),
        ("result", None, None),
    ]


# The README's shell commands, run as a new user would: in a fresh copy of the checkout, with
# HOME an empty directory and no AWS_* variable. uv's package cache is shared to save downloads
# (it holds packages, no configuration).

SH_BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)


def readme_command(pattern: str) -> tuple[dict[str, str], list[str]]:
    """(variables, argv) of the README command matching ``pattern``."""
    for block in SH_BLOCKS:
        for line in block.replace("\\\n", " ").splitlines():
            if re.search(pattern, line):
                words = shlex.split(line, comments=True)
                assignments = [w for w in words if re.fullmatch(r"[A-Z_]+=\S*", w)]
                variables = dict(w.split("=", 1) for w in assignments)
                return variables, words[len(assignments) :]
    raise AssertionError(f"no command matching {pattern!r} in the README")


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A copy of the checkout's files (what a clone holds) and a new user's environment."""
    clone = tmp_path_factory.mktemp("clone")
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    cache = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=True)
    home = tmp_path_factory.mktemp("home")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "UV_", "VIRTUAL_ENV", "PYTEST"))
    }
    env.update(HOME=str(home), UV_CACHE_DIR=cache.stdout.strip())
    if "PYENV_ROOT" not in env and (Path.home() / ".pyenv").is_dir():
        env["PYENV_ROOT"] = str(Path.home() / ".pyenv")  # pyenv's shims look under HOME
    return clone, env


def installed(clone: Path) -> set[str]:
    [site] = clone.glob(".venv/lib/python*/site-packages")
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def chat(url: str) -> None:
    with (
        connect(signed_in(url, "ann"), open_timeout=5) as ann,
        connect(signed_in(url, "ben"), open_timeout=5) as ben,
    ):
        for client in (ann, ben):
            join = {"action": "chat.join", "id": "j", "data": {"room": "lobby"}}
            client.send(json.dumps(join))
            assert json.loads(client.recv(timeout=10))["type"] == "result"
        ann.recv(timeout=10)  # ben joined
        ann.send(json.dumps({"action": "chat.send", "data": {"text": "hi ben"}}))
        assert json.loads(ben.recv(timeout=10))["data"]["text"] == "hi ben"


DEV_ONLY = {"pytest", "moto", "playwright", "mypy", "cfn_lint", "hypothesis"}


@contextmanager
def readme_server(
    pattern: str, fresh_clone: tuple[Path, dict[str, str]], log: Path, port: str = "0"
) -> Iterator[tuple[str, list[str]]]:
    """Start the README command matching ``pattern`` in the fresh clone, its port (3001 in the
    README, or PORT) replaced by ``port``; yields its first line and the log once stopped."""
    clone, env = fresh_clone
    variables, argv = readme_command(pattern)
    variables = {k: v.replace("3001", port) for k, v in {**variables, "PORT": port}.items()}
    argv = [port if word == "3001" else word for word in argv]
    server = Background(argv, cwd=clone, env={**env, **variables}, log=log)
    output: list[str] = []
    try:
        yield server.first_line(), output
    finally:
        output.append(server.output())


@pytest.mark.timeout(300)
def test_the_demo_command_from_a_fresh_clone(
    fresh_clone: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    command = r"^uv run .*examples/demochat\.py"
    assert "--no-dev" in readme_command(command)[1]  # only what the demo needs
    with readme_server(command, fresh_clone, tmp_path / "log") as (line, _):
        match = re.fullmatch(
            r"Chat demo: http://(127\.0\.0\.1:\d+)/  \(open it in two tabs\)", line
        )
        assert match, line
        chat(f"ws://{match.group(1)}/ws")
    packages = installed(fresh_clone[0])
    assert {"fastapi", "mangum", "pydantic", "uvicorn", "websockets", "pyjwt"} <= packages
    assert not packages & (DEV_ONLY | {"boto3"}), packages


@pytest.mark.timeout(300)
def test_the_emulator_command_from_a_fresh_clone(
    fresh_clone: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    port = str(free_port())
    command = r"python -m mangum_ws\.local demochat:handler"
    with readme_server(command, fresh_clone, tmp_path / "log", port) as (line, output):
        assert line.startswith(f"WebSocket:       ws://127.0.0.1:{port}/local"), line
        chat(f"ws://127.0.0.1:{port}/local")  # the moment the URL is printed
    [log] = output
    assert "no AWS credentials found: placeholders" in log
    assert "Traceback" not in log
    assert not installed(fresh_clone[0]) & DEV_ONLY


def test_the_install_section_names_this_version() -> None:
    import mangum_ws

    install = README.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert f"**mangum-ws {mangum_ws.__version__}**" in install
    assert f"dist/mangum_ws-{mangum_ws.__version__}-py3-none-any.whl" in install
    assert "0.1.x" in install  # what PyPI's mangum-ws is, and how this relates to it
