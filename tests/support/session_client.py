"""A Python client speaking wire protocol v1 with sessions, for tests (the typed Python client
is another piece of work): ``$hello`` first on every connection, the session token and the
last seq of each topic kept across reconnects, replays and duplicates dropped, events held
until the ones before them arrive. It reconnects whenever the socket drops."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus


class SessionClient:
    def __init__(self, url: str, subscribe: list[tuple[str, Any]]) -> None:
        self.url = url
        self.subscribe = subscribe  # actions sent once, after the first $hello
        self.token: str | None = None
        self.last: dict[str, int] = {}
        self.held: dict[str, dict[int, Any]] = {}
        self.delivered: list[tuple[str, int, Any]] = []  # what the app sees: (topic, seq, data)
        self.hellos: list[dict[str, Any]] = []
        self.hello_errors: list[str] = []
        self.connections = 0
        self.joined = threading.Event()
        self._next_id = 0

    def _id(self) -> str:
        self._next_id += 1
        return f"p{self._next_id}"

    async def run(self, done: Any, deadline: float) -> None:
        """Connect, and reconnect after every drop, until ``done(self)`` or the deadline."""
        while not done(self) and time.monotonic() < deadline:
            try:
                async with connect(self.url, open_timeout=5, close_timeout=1) as socket:
                    self.connections += 1
                    await self._session(socket, done, deadline)
            except (ConnectionClosed, InvalidHandshake, InvalidStatus, OSError, TimeoutError):
                pass
            await asyncio.sleep(random.uniform(0.01, 0.1))

    async def _hello(self, socket: ClientConnection) -> str:
        hello_id = self._id()
        data = {"session": self.token, "since": dict(self.last)}
        await socket.send(json.dumps({"action": "$hello", "id": hello_id, "data": data}))
        return hello_id

    async def _session(self, socket: ClientConnection, done: Any, deadline: float) -> None:
        hello_id = await self._hello(socket)
        waiting: set[str] = set()
        while not done(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            frame = json.loads(await asyncio.wait_for(socket.recv(), remaining))
            if frame.get("type") == "event" and "seq" in frame:
                self._event(frame["topic"], frame["seq"], frame["data"])
            elif frame.get("id") == hello_id and frame["type"] == "error":
                # internal_error: the store failed half-way; moving a session again is harmless
                self.hello_errors.append(frame["error"]["code"])
                await asyncio.sleep(random.uniform(0.01, 0.1))
                hello_id = await self._hello(socket)
            elif frame.get("id") == hello_id:
                answer = frame["data"]
                self.hellos.append(answer)
                self.token = answer["session"]
                if not answer["resumed"]:
                    self.last.clear()
                for topic in answer["lost"]:
                    self.last.pop(topic, None)
                if not self.joined.is_set() and not waiting:
                    for action, data in self.subscribe:
                        request_id = self._id()
                        waiting.add(request_id)
                        await socket.send(
                            json.dumps({"action": action, "id": request_id, "data": data})
                        )
            elif frame.get("id") in waiting:
                waiting.discard(frame["id"])
                if not waiting:
                    self.joined.set()

    def _event(self, topic: str, seq: int, data: Any) -> None:
        last = self.last.get(topic)
        if last is not None and seq <= last:
            return  # a replay of what arrived already
        if last is not None and seq > last + 1:
            self.held.setdefault(topic, {})[seq] = data  # the ones before it are on their way
            return
        self.last[topic] = seq
        self.delivered.append((topic, seq, data))
        waiting = self.held.get(topic, {})
        while seq + 1 in waiting:
            seq += 1
            self.last[topic] = seq
            self.delivered.append((topic, seq, waiting.pop(seq)))
