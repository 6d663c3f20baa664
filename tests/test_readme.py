"""The README's examples run as written: each Python block is executed, then driven for real."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.support.server import serve

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def run_block(index: int, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.delenv("APIGW_MANAGEMENT_URL", raising=False)
    namespace: dict[str, Any] = {"__name__": f"readme_block_{index}"}
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)
    return namespace


def test_readme_has_the_examples() -> None:
    assert len(BLOCKS) == 2


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
