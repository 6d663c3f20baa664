"""``python -m mangum_ws.local``: the chat demo's Lambda handler behind the emulator, on a machine
that has never seen AWS (no AWS_* variables, an empty HOME)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from mangum_ws.local import GatewaySettings
from tests.browser import browser
from tests.support.demo_auth import signed_in
from tests.support.demo_page import join, sign_in, stop_mid_reply
from tests.support.modules import load_demo
from tests.support.processes import Background, free_port, run, without_aws
from tests.support.server import serve

EMULATOR = [sys.executable, "-m", "mangum_ws.local"]


class Emulator(Background):
    """``python -m mangum_ws.local demochat:handler`` on a machine that has never seen AWS."""

    def __init__(
        self,
        tmp_path: Path,
        port: int,
        management_url: str | None = None,
        *options: str,
        **env: str,
    ) -> None:
        self.port = port
        self.url = f"ws://127.0.0.1:{port}/local"
        env = without_aws(
            tmp_path / "home",
            APIGW_MANAGEMENT_URL=management_url or f"http://127.0.0.1:{port}",
            **env,
        )
        argv = [*EMULATOR, "demochat:handler", "--app-dir", "examples", "--port", str(port)]
        super().__init__([*argv, *options], env=env, log=tmp_path / "emulator.log")


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emulator = Emulator(tmp_path, free_port())
    try:
        yield emulator
    finally:
        emulator.output()


def join_room(client: object) -> None:
    client.send(  # type: ignore[attr-defined]
        json.dumps({"action": "chat.join", "id": "j", "data": {"room": "r"}})
    )


def test_chats_the_moment_the_url_is_printed_without_any_aws_setup(emulator: Emulator) -> None:
    url_line = emulator.first_line()
    assert url_line.startswith(f"WebSocket:       ws://127.0.0.1:{emulator.port}/local")
    # No wait, no retry: printed means accepting.
    with (
        connect(signed_in(emulator.url, "alice"), open_timeout=2) as alice,
        connect(signed_in(emulator.url, "bob")) as bob,
    ):
        join_room(alice)
        assert json.loads(alice.recv(timeout=10))["data"]["members"] == ["alice"]
        join_room(bob)
        assert json.loads(bob.recv(timeout=10))["data"]["members"] == ["alice", "bob"]
        assert json.loads(alice.recv(timeout=10))["event"] == "chat.joined"
        alice.send(json.dumps({"action": "chat.send", "data": {"text": "hello, bob"}}))
        message = json.loads(bob.recv(timeout=10))
        assert (message["event"], message["data"]["text"]) == ("chat.message", "hello, bob")
    log = emulator.output()
    assert f"Management API:  http://127.0.0.1:{emulator.port}" in log
    assert "Lambda environment: region us-east-1;" in log
    assert "no AWS credentials found: placeholders" in log
    assert "Traceback" not in log


def test_a_failed_reply_is_one_log_line(tmp_path: Path) -> None:
    nowhere = free_port()  # nothing listens there
    emulator = Emulator(tmp_path, free_port(), management_url=f"http://127.0.0.1:{nowhere}")
    emulator.first_line()
    with connect(signed_in(emulator.url, "a")) as client:
        for _ in range(2):
            join_room(client)
        emulator.wait_for_log("not posted", 2)
    log = emulator.output()
    failures = [line for line in log.splitlines() if "not posted" in line]
    assert len(failures) == 2, log
    assert "reply to connection " in failures[0]
    assert "Could not connect to the endpoint URL" in failures[0]
    assert "Traceback" not in log


def test_the_demo_page_chats_through_the_emulator(emulator: Emulator) -> None:
    """Headless Chromium: the page (served by the app) talks to the emulated API Gateway."""
    emulator.first_line()
    demo = load_demo("demochat_page")
    with serve(demo.app) as address, browser() as chromium:
        pages = [chromium.new_page(), chromium.new_page()]
        for page, nick in zip(pages, ("ann", "ben"), strict=True):
            join(page, f"http://{address}/?ws={emulator.url}", nick)
        pages[0].fill("#text", "via the emulator")
        pages[0].click("#send")
        pages[1].wait_for_selector("#messages li:text('ann: via the emulator')", timeout=10000)


def test_the_demo_pages_stop_button_stops_the_lambdas_stream(tmp_path: Path) -> None:
    """Stop in Chromium: the page's $cancel is a second invocation (a second environment: AWS
    scales out), which stops the stream the first one is running."""
    word_delay = 0.2
    emulator = Emulator(
        tmp_path, free_port(), None, "--concurrency", "2", DEMO_WORD_DELAY=str(word_delay)
    )
    emulator.first_line()
    demo = load_demo("demochat_page")
    with serve(demo.app) as address, browser() as chromium:
        page = chromium.new_page()
        sign_in(page, f"http://{address}/?ws={emulator.url}", "ann")
        stop_mid_reply(page, "via the emulator", demo.reply_words("via the emulator"), word_delay)
    assert "Traceback" not in emulator.output()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run([*EMULATOR, *args])


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (
            "demochat:app",
            "'demochat:app' is a FastAPI app, not the Lambda handler: "
            "pass the Mangum handler, e.g. demochat:handler",
        ),
        (
            "demochat:ws",
            "'demochat:ws' is the MangumWS, not the Lambda handler: "
            "pass the Mangum handler, e.g. demochat:handler",
        ),
        ("demochat:PAGE", "is a PosixPath, not a Lambda handler"),
        ("demochat:seat", "cannot be called as handler(event, context)"),
        ("nowhere:handler", "module 'nowhere' not found"),
        ("demochat:nope", "has no attribute 'nope'"),
        ("demochat", "expected MODULE:ATTRIBUTE"),
    ],
)
def test_a_bad_target_is_one_line_and_exit_2(target: str, message: str) -> None:
    result = run_cli(target, "--app-dir", "examples", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {message}"] or (
        len(result.stderr.splitlines()) == 1 and message in result.stderr
    ), result.stderr
    assert result.stdout == ""


def test_a_busy_port_is_one_line_suggesting_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demochat:handler", "--app-dir", "examples", "--port", str(port))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: port {port} on 127.0.0.1 is in use: pick another with --port ")


def test_the_users_import_error_keeps_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import json\n\nraise RuntimeError('my own bug')\n")
    result = run_cli("broken:handler", "--app-dir", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert 'broken.py", line 3' in result.stderr
    assert "RuntimeError: my own bug" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: importing 'broken' raised RuntimeError (traceback above)"
    )


@pytest.mark.parametrize("value", ["-1", "43201"])
def test_a_fanout_retry_after_outside_sqss_range_is_one_line_and_exit_2(value: str) -> None:
    result = run_cli("demochat:handler", "--app-dir", "examples", "--fanout-retry-after", value)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: --fanout-retry-after must be 0 to 43200 seconds (SQS's range)")


def test_fanout_retry_after_reaches_the_queue_poller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flag is a GatewaySettings field the queue poller reads (tests/test_fanout_queue.py
    # runs that path for real); here: the CLI hands it over, and leaves None when absent.
    import mangum_ws.local.__main__ as cli

    (tmp_path / "retry_after_app.py").write_text(
        "from fastapi import FastAPI\nfrom mangum import Mangum\nfrom mangum_ws import MangumWS\n"
        "ws = MangumWS()\napp = FastAPI()\napp.include_router(ws.router)\n"
        "handler = Mangum(app, lifespan='off', custom_handlers=[ws.handler])\n"
    )
    seen: list[GatewaySettings] = []

    def capture(handler: Any, *, host: str, settings: GatewaySettings, sock: Any) -> Any:
        sock.close()
        seen.append(settings)
        raise SystemExit(0)

    monkeypatch.setattr(cli, "LocalApiGateway", capture)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # main() sets Lambda's variables
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "retry_after_app", None)  # imported afresh, then dropped
    del sys.modules["retry_after_app"]
    for extra in (["--fanout-retry-after", "0"], ["--fanout-retry-after", "30"], []):
        with pytest.raises(SystemExit):
            cli.main(["retry_after_app:handler", "--app-dir", str(tmp_path), "--port", "0", *extra])
    assert [s.fanout_retry_after for s in seen] == [0, 30, None]
