"""``python -m mangum_ws.local``: the chat demo's Lambda handler behind the emulator."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from tests.browser import browser
from tests.support.modules import load_demo
from tests.support.server import serve

ROOT = Path(__file__).parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def emulator() -> Iterator[tuple[str, list[str]]]:
    port = free_port()
    env = {**os.environ, "APIGW_MANAGEMENT_URL": f"http://127.0.0.1:{port}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mangum_ws.local",
            "demochat:handler",
            "--app-dir",
            "examples",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner = [process.stdout.readline().strip(), process.stdout.readline().strip()]
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}/local", banner
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_cli_prints_the_urls_and_serves_the_demo(emulator: tuple[str, list[str]]) -> None:
    url, banner = emulator
    port = url.split(":")[2].split("/")[0]
    assert banner[0].startswith(f"WebSocket:       ws://127.0.0.1:{port}/local")
    assert banner[1].startswith(f"Management API:  http://127.0.0.1:{port}")
    with connect(url) as alice, connect(url) as bob:
        alice.send(
            json.dumps({"action": "chat.join", "id": "1", "data": {"room": "r", "nick": "alice"}})
        )
        assert json.loads(alice.recv(timeout=10))["type"] == "result"
        bob.send(
            json.dumps({"action": "chat.join", "id": "1", "data": {"room": "r", "nick": "bob"}})
        )
        assert json.loads(bob.recv(timeout=10))["data"]["members"] == ["alice", "bob"]
        assert json.loads(alice.recv(timeout=10))["event"] == "chat.joined"


def test_the_demo_page_chats_through_the_emulator(emulator: tuple[str, list[str]]) -> None:
    """Headless Chromium: the page (served by the app) talks to the emulated API Gateway."""
    url, _ = emulator
    demo = load_demo("demochat_page")
    with serve(demo.app) as address, browser() as chromium:
        pages = [chromium.new_page(), chromium.new_page()]
        for page, nick in zip(pages, ("ann", "ben"), strict=True):
            page.goto(f"http://{address}/?ws={url}")
            page.wait_for_selector("#status:text('connected')")
            page.fill("#nick", nick)
            page.click("#join")
            page.wait_for_selector("#messages li:text('you joined lobby')")
        pages[0].fill("#text", "via the emulator")
        pages[0].click("#send")
        pages[1].wait_for_selector("#messages li:text('ann: via the emulator')", timeout=10000)
