"""The generated Python client's sessions: ``$hello`` on every (re)connect, against the real
server on ws.mount and the local API Gateway (resume, replay, lost topics, schema mismatch,
another principal's token), and against a scripted WebSocket server for what a real one cannot
be made to send on demand (duplicates, gaps, a failing ``$hello``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve

from mangum_ws.codegen import write
from tests.support import sessions_app
from tests.support.flaky_proxy import FlakyProxy, flaky_proxy
from tests.support.modules import load_fresh
from tests.support.server import free_port
from tests.test_codegen_python import in_own_thread
from tests.test_sessions import served

PATHS = ["ws.mount", "emulator-posted"]


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    out = tmp_path_factory.mktemp("feed_py")
    write(sessions_app.ws, out, "tests.support.sessions_app:ws", python=True)
    return load_fresh(out / "client.py", "feed_generated_client")


@contextmanager
def through_proxy(path: str, **options: Any) -> Iterator[tuple[str, str, FlakyProxy]]:
    """The feed app on ``path``: its direct URL, and a URL through a proxy that cuts sockets."""
    with served(path, **options) as (url, _ws):
        parts = urlsplit(url)
        assert parts.port is not None
        with flaky_proxy(parts.port) as proxy:
            yield url, urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}")), proxy


def fast(**more: Any) -> dict[str, Any]:
    return {"base_delay": 0.02, "max_delay": 0.2, "timeout": 10.0, **more}


async def until(check: Any, what: str) -> None:
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


class Feed:
    """A generated client subscribed to topic t as ``who``, recording what the app sees."""

    def __init__(self, module: ModuleType, url: str, who: str, **options: Any) -> None:
        self.sessions: list[Any] = []
        self.client = module.Client(
            f"{url}?who={who}", on_session=self.sessions.append, **fast(**options)
        )
        self.seen: list[int] = []
        self.client.on_feed_item(lambda item: self.seen.append(item.n))


async def post(publisher: Any, module: ModuleType, *numbers: int) -> None:
    for n in numbers:
        await publisher.feed_post(module.Post(topic="t", n=n))


async def go_away(feed: Feed, proxy: FlakyProxy) -> str:
    """Cut the feed's socket and keep it away (its URL leads nowhere) until ``come_back``."""
    real = feed.client.url
    feed.client.url = f"ws://127.0.0.1:{free_port()}/"
    proxy.cut()
    await until(lambda: feed.client.connection_state == "reconnecting", "the cut was noticed")
    return str(real)


async def come_back(feed: Feed, real_url: str, hellos: int) -> None:
    feed.client.url = real_url
    await until(lambda: len(feed.sessions) >= hellos, f"$hello number {hellos} was answered")


@pytest.mark.parametrize("path", PATHS)
def test_a_resume_moves_the_subscription_and_replays_the_missed_events_once_in_order(
    path: str, feed: ModuleType
) -> None:
    async def main() -> None:
        with through_proxy(path) as (url, proxied, proxy):
            alice = Feed(feed, proxied, "alice")
            async with alice.client, feed.Client(f"{url}?who=bob", **fast()) as publisher:
                await alice.client.feed_join(feed.Join(topic="t"))
                await post(publisher, feed, 1, 2)
                await until(lambda: alice.seen == [1, 2], "1 and 2 arrived")
                first = alice.client.session
                real = await go_away(alice, proxy)
                await post(publisher, feed, 3, 4, 5)
                await come_back(alice, real, 2)
                await post(publisher, feed, 6)  # live, on the new connection
                await until(lambda: len(alice.seen) >= 6, "6 arrived")
                await asyncio.sleep(0.2)  # room for a duplicate to show up, were it kept
                assert alice.seen == [1, 2, 3, 4, 5, 6]
                resumed = alice.client.session
                assert (first.resumed, resumed.resumed) == (False, True)
                assert resumed.token == first.token
                assert resumed.replayed == 3
                assert resumed.lost == ()

    in_own_thread(main())


@pytest.mark.parametrize("path", PATHS)
def test_a_topic_past_what_the_server_keeps_is_reported_lost_and_starts_over(
    path: str, feed: ModuleType
) -> None:
    async def main() -> None:
        with through_proxy(path, topic_history=2) as (url, proxied, proxy):
            alice = Feed(feed, proxied, "alice")
            async with alice.client, feed.Client(f"{url}?who=bob", **fast()) as publisher:
                await alice.client.feed_join(feed.Join(topic="t"))
                await post(publisher, feed, 1)
                await until(lambda: alice.seen == [1], "1 arrived")
                real = await go_away(alice, proxy)
                await post(publisher, feed, 2, 3, 4)  # only 3 and 4 are kept
                await come_back(alice, real, 2)
                assert alice.client.session.lost == ("t",)
                assert alice.client.session.resumed is True
                # Still subscribed; the client took the topic's numbering afresh.
                await post(publisher, feed, 5)
                await until(lambda: alice.seen[-1:] == [5], "5 arrived")

    in_own_thread(main())


def test_a_token_of_another_principal_starts_a_new_session(
    feed: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        with through_proxy("ws.mount") as (_url, proxied, proxy):
            alice = Feed(feed, proxied, "alice")
            async with alice.client:
                await alice.client.feed_join(feed.Join(topic="t"))
                token = alice.client.session.token
                real = await go_away(alice, proxy)
                # The same client, signed in again as mallory: alice's token is refused, and
                # the client starts a new session rather than going on without one.
                await come_back(alice, real.replace("who=alice", "who=mallory"), 2)
                assert alice.client.session.resumed is False
                assert alice.client.session.token != token

    in_own_thread(main())
    assert "presented a session token of another principal" in caplog.text


def test_a_schema_mismatch_calls_back_once_and_by_default_logs_one_line(
    feed: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        with through_proxy("ws.mount") as (_url, proxied, proxy):
            mismatches: list[Any] = []
            told = Feed(feed, proxied, "alice", schema_hash="0" * 32)
            told.client.on_schema_mismatch = mismatches.append
            async with told.client:
                assert told.client.session.schema_ok is False
                real = await go_away(told, proxy)
                await come_back(told, real, 2)
            assert [info.schema_ok for info in told.sessions] == [False, False]
            assert len(mismatches) == 1  # once, not after every reconnect
            with caplog.at_level(logging.WARNING):
                async with feed.Client(f"{proxied}?who=bob", schema_hash="1" * 32) as default:
                    assert default.session.schema_ok is False
            # The generated client's own hash is the registry's.
            async with feed.Client(f"{proxied}?who=carol") as right:
                assert right.schema_hash == feed.SCHEMA_HASH == sessions_app.ws.schema_hash
                assert right.session.schema_ok is True

    in_own_thread(main())
    client_lines = [
        r for r in caplog.records if "regenerate it" in r.getMessage() and r.name != "mangum_ws"
    ]
    assert len(client_lines) == 1


class Scripted:
    """A WebSocket server that answers with frames written by the test, recording what the
    client sends: for duplicates, gaps and failures a real server cannot be made to produce."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.heard: list[list[dict[str, Any]]] = []  # per connection

    async def handle(self, socket: ServerConnection) -> None:
        heard: list[dict[str, Any]] = []
        self.heard.append(heard)

        async def ask() -> dict[str, Any]:
            frame: dict[str, Any] = json.loads(await socket.recv())
            heard.append(frame)
            return frame

        await self.script(len(self.heard), ask, socket)
        async for raw in socket:
            heard.append(json.loads(raw))

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        """Serve on 127.0.0.1; yield the URL."""
        async with ws_serve(self.handle, "127.0.0.1", 0) as server:
            yield f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}/"


def result(frame: dict[str, Any], data: Any) -> str:
    return json.dumps(
        {"type": "result", "id": frame["id"], "action": frame["action"], "data": data}
    )


def hello_answer(frame: dict[str, Any], *, resumed: bool) -> str:
    session = {"resumed": resumed, "replayed": 0, "lost": [], "schema_ok": True}
    return result(frame, {"session": "tok", **session})


def event(seq: int, topic: str = "t") -> str:
    frame = {"type": "event", "event": "feed.item", "topic": topic, "seq": seq, "data": {"n": seq}}
    return json.dumps(frame)


def test_duplicates_are_dropped_and_early_events_wait_for_the_gap_to_fill(
    feed: ModuleType,
) -> None:
    async def script(connection: int, ask: Any, socket: ServerConnection) -> None:
        hello = await ask()
        if connection == 1:
            await socket.send(hello_answer(hello, resumed=False))
            for seq in (1, 2, 2, 1, 4, 3, 6):  # a replayed 1 and 2; 4 before 3; 5 never comes
                await socket.send(event(seq))
            await asyncio.sleep(0.5)  # past the gap timeout: 6 goes to the app without 5
            await socket.send(event(7))
            await ask()  # the test's call: the cue to drop this socket
            await socket.close()
        else:
            for seq in (6, 7, 8):  # the replay overlaps what the client saw
                await socket.send(event(seq))
            await socket.send(hello_answer(hello, resumed=True))

    async def main() -> None:
        scripted = Scripted(script)
        async with scripted.serving() as url:
            alice = Feed(feed, url, "alice", gap_timeout=0.2)
            async with alice.client:
                await until(lambda: alice.seen[-1:] == [7], "7 arrived")
                assert alice.seen == [1, 2, 3, 4, 6, 7]
                with pytest.raises(feed.ActionCallError):
                    await alice.client.me_get(timeout=0.5)
                await until(lambda: len(alice.sessions) == 2, "the second $hello")
                await until(lambda: alice.seen[-1:] == [8], "8 arrived")
        assert alice.seen == [1, 2, 3, 4, 6, 7, 8]
        first, second = (heard[0] for heard in scripted.heard)
        assert (first["action"], first["data"]["session"], first["data"]["since"]) == (
            "$hello",
            None,
            {},
        )
        assert (second["data"]["session"], second["data"]["since"]) == ("tok", {"t": 7})
        assert first["data"]["schema"] == feed.SCHEMA_HASH

    in_own_thread(main())


def test_a_gap_waits_through_a_reconnect_for_the_replay(feed: ModuleType) -> None:
    async def script(connection: int, ask: Any, socket: ServerConnection) -> None:
        hello = await ask()
        if connection == 1:
            await socket.send(hello_answer(hello, resumed=False))
            await socket.send(event(1))
            await socket.send(event(3))  # 2 is on its way... and the socket drops
            await socket.close()
        else:
            await asyncio.sleep(1.0)  # a slow resume, five gap timeouts long
            await socket.send(event(2))
            await socket.send(event(3))
            await socket.send(hello_answer(hello, resumed=True))

    async def main() -> None:
        scripted = Scripted(script)
        async with scripted.serving() as url:
            alice = Feed(feed, url, "alice", gap_timeout=0.2)
            async with alice.client:
                await until(lambda: len(alice.sessions) == 2, "the second $hello")
                await asyncio.sleep(0.3)
        assert alice.seen == [1, 2, 3]
        assert scripted.heard[1][0]["data"]["since"] == {"t": 1}

    in_own_thread(main())


def test_a_hello_that_failed_is_retried_and_calls_wait_for_its_answer(feed: ModuleType) -> None:
    async def script(connection: int, ask: Any, socket: ServerConnection) -> None:
        for _ in range(2):  # the store failed half-way, twice
            hello = await ask()
            error = {"code": "internal_error", "message": "try again"}
            await socket.send(json.dumps({"type": "error", "id": hello["id"], "error": error}))
        hello = await ask()
        await socket.send(hello_answer(hello, resumed=False))
        call = await ask()
        await socket.send(result(call, {"name": "a"}))

    async def main() -> None:
        scripted = Scripted(script)
        async with scripted.serving() as url, feed.Client(url, **fast()) as client:
            assert (await client.me_get()).model_dump() == {"name": "a"}
            assert client.session.token == "tok"
        actions = [frame["action"] for frame in scripted.heard[0]]
        assert actions == ["$hello", "$hello", "$hello", "me.get"]

    in_own_thread(main())


def test_with_sessions_off_no_hello_is_sent(feed: ModuleType) -> None:
    async def script(connection: int, ask: Any, socket: ServerConnection) -> None:
        call = await ask()
        await socket.send(result(call, {"name": "a"}))

    async def main() -> None:
        scripted = Scripted(script)
        async with scripted.serving() as url, feed.Client(url, sessions=False) as client:
            assert (await client.me_get()).model_dump() == {"name": "a"}
            assert client.session is None
        assert [frame["action"] for frame in scripted.heard[0]] == ["me.get"]

    in_own_thread(main())


def test_the_demo_client_carries_the_registrys_schema_hash() -> None:
    demo = Path(__file__).parent.parent / "clients" / "demochat"
    ts_hash = next(
        line.split('"')[1]
        for line in (demo / "client.ts").read_text().splitlines()
        if line.startswith("export const SCHEMA_HASH")
    )
    assert f'SCHEMA_HASH = "{ts_hash}"' in (demo / "client.py").read_text()
