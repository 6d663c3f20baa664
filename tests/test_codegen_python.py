"""The generated Python client: mypy --strict, and real calls to the demo and the zoo served by
ws.mount and by the local API Gateway, reconnecting when the server side drops the socket."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mangum_ws.codegen import write
from mangum_ws.local import LocalApiGateway
from tests import codegen_zoo
from tests.support import demo_auth
from tests.support.modules import load_demo, load_fresh
from tests.support.server import free_port, serve

ROOT = Path(__file__).parent.parent
DEMO_CLIENT = ROOT / "clients" / "demochat" / "client.py"


def mypy_strict(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=path.parent,
    )


@pytest.fixture(scope="module")
def zoo_client_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zoo_py")
    write(codegen_zoo.ws, out, "tests.codegen_zoo:ws", python=True)
    return out / "client.py"


@pytest.mark.parametrize("which", ["demo", "zoo"])
def test_the_generated_client_passes_mypy_strict(which: str, zoo_client_path: Path) -> None:
    result = mypy_strict(DEMO_CLIENT if which == "demo" else zoo_client_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 source file" in result.stdout


def test_a_type_error_in_a_call_fails_mypy(tmp_path: Path) -> None:
    # The typed methods are load-bearing: the wrong model for an action does not type-check.
    caller = tmp_path / "caller.py"
    (tmp_path / "demo_client.py").write_text(DEMO_CLIENT.read_text())
    caller.write_text(
        "from demo_client import Client, JoinIn, SendIn, SendOut\n"
        "async def main(client: Client) -> None:\n"
        "    out: SendOut = await client.chat_send(JoinIn(room='r', nick='n'))\n"
        "    joined: SendOut = await client.chat_join(JoinIn(room='r', nick='n'))\n"
        "    await client.chat_leave(SendIn(text='x'))\n"
    )
    result = mypy_strict(caller)
    assert result.returncode == 1
    lines = {line.split(":")[1] for line in result.stdout.splitlines() if ": error:" in line}
    assert lines == {"3", "4", "5"}, result.stdout


@pytest.fixture(scope="module")
def demo_client() -> ModuleType:
    return load_fresh(DEMO_CLIENT, "demochat_generated_client")


@pytest.fixture
def demo_on_mount() -> Iterator[str]:
    demo = load_demo("demochat_for_python_client")
    with serve(demo.app) as address:
        yield f"ws://{address}/ws"


@pytest.fixture
def demo_on_local_gateway(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    monkeypatch.setenv("APIGW_MANAGEMENT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("CONNECTIONS_TABLE", raising=False)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")  # posts are signed; they never leave 127.0.0.1
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    demo = load_demo("demochat_for_python_client_on_lambda")
    with LocalApiGateway(demo.handler, port=port) as gateway:
        yield gateway.ws_url


def in_own_thread(coro: Coroutine[Any, Any, None]) -> None:
    """``asyncio.run`` in a thread of its own: this thread's loop (Mangum's) is left alone."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    if failures:
        raise failures[0]


async def chat(module: ModuleType, url: str) -> None:
    def signed_in(nick: str) -> Any:
        return module.Client(url, query={"token": demo_auth.token(nick)})

    async with signed_in("ana") as ana, signed_in("José") as bob:  # \w is Unicode here too
        heard: list[Any] = []
        ana.on_chat_message(heard.append)
        joined = await ana.chat_join(module.JoinIn(room="lobby"))
        assert isinstance(joined, module.JoinOut)
        assert joined.members == ["ana"]
        await bob.chat_join(module.JoinIn(room="lobby"))
        sent = await bob.chat_send(module.SendIn(text="hola"))
        assert isinstance(sent, module.SendOut)
        for _ in range(200):
            if heard:
                break
            await asyncio.sleep(0.01)
        assert [(m.nick, m.text) for m in heard] == [("José", "hola")]
        assert isinstance(heard[0], module.ChatMessage)
        words = [t.text async for t in ana.assistant_reply(module.AskIn(prompt="hi"))]
        assert words
        assert all(isinstance(w, str) for w in words)
        async with signed_in("José") as twin:
            with pytest.raises(module.ActionCallError) as taken:
                await twin.chat_join(module.JoinIn(room="lobby"))
            assert taken.value.code == "nick_taken"
        await bob.chat_leave()


def test_chats_with_the_demo_through_ws_mount(demo_client: ModuleType, demo_on_mount: str) -> None:
    in_own_thread(chat(demo_client, demo_on_mount))


def test_chats_with_the_demo_through_the_local_api_gateway(
    demo_client: ModuleType, demo_on_local_gateway: str
) -> None:
    in_own_thread(chat(demo_client, demo_on_local_gateway))


@pytest.fixture(scope="module")
def zoo_client(zoo_client_path: Path) -> ModuleType:
    return load_fresh(zoo_client_path, "zoo_generated_client")


@pytest.fixture(scope="module")
def zoo_url() -> Iterator[str]:
    with serve(codegen_zoo.app()) as address:
        yield f"ws://{address}/"


def options(**more: Any) -> dict[str, Any]:
    return {"base_delay": 0.02, "max_delay": 0.2, **more}


def test_typed_results_errors_and_timeouts(zoo_client: ModuleType, zoo_url: str) -> None:
    z = zoo_client

    async def main() -> None:
        async with z.Client(zoo_url, query={"token": "t0k"}, **options()) as client:
            assert await client.zoo_echo(z.EchoIn(text="hi")) == z.EchoOut(text="hi", count=1)
            assert (await client.zoo_whoami()).token == "t0k"
            assert (await client.zoo_list()).root == [z.ZooListOutputEnum.X, z.ZooListOutputEnum.Y]
            assert (await client.zoo_finished(z.Tag(tag="none"))).root is False
            assert await client.zoo_ping() is None
            with pytest.raises(z.ActionCallError) as failed:
                await client.zoo_fail(z.EchoIn(text="boom"))
            assert (failed.value.code, failed.value.details) == ("zoo_failed", {"text": "boom"})
            with pytest.raises(z.ActionCallError) as slow:
                await client.zoo_echo(z.EchoIn(text="x", delay=2), timeout=0.2)
            assert slow.value.code == "timeout"
            assert await client.zoo_echo(z.EchoIn(text="after")) == z.EchoOut(text="after", count=1)

    asyncio.run(main())


def test_a_message_over_32_kb_is_refused_before_it_is_sent(
    zoo_client: ModuleType, zoo_url: str
) -> None:
    z = zoo_client

    async def main() -> None:
        async with z.Client(zoo_url, **options()) as client:
            for text in ("x" * 40 * 1024, "é" * 17_000):  # the second: over 32 KB in bytes
                with pytest.raises(z.ActionCallError) as refused:
                    await client.zoo_echo(z.EchoIn.model_construct(text=text))
                error = refused.value
                assert error.code == "payload_too_large"
                assert error.details["limit"] == z.MAX_FRAME_BYTES == 32768
                assert error.details["size"] > 32768
                assert "32768 bytes" in error.message
                assert error.action == "zoo.echo"
            # Under the limit it goes out, and the server answers (the text is too long).
            with pytest.raises(z.ActionCallError) as answered:
                await client.zoo_echo(z.EchoIn.model_construct(text="x" * 30 * 1024))
            assert answered.value.code == "invalid_input"
            assert client.connection_state == "open"

    asyncio.run(main())


def test_streams_yield_typed_chunks_and_leaving_early_cancels(
    zoo_client: ModuleType, zoo_url: str
) -> None:
    z = zoo_client

    async def main() -> None:
        async with z.Client(zoo_url, **options()) as client:
            tokens = [t async for t in client.zoo_count(z.CountIn(upto=3))]
            assert tokens == [z.Token(index=i, text=f"t{i}") for i in range(3)]
            async for token in client.zoo_count(z.CountIn(upto=10_000, delay=0.01, tag="py")):
                if token.index == 2:
                    break
            for _ in range(300):
                if (await client.zoo_finished(z.Tag(tag="py"))).root:
                    break
                await asyncio.sleep(0.01)
            assert (await client.zoo_finished(z.Tag(tag="py"))).root is True
            with pytest.raises(z.ActionCallError) as failed:
                async for _ in client.zoo_count(z.CountIn(upto=5, fail_at=2)):
                    pass
            assert failed.value.code == "zoo_failed"

    asyncio.run(main())


def test_events_as_callbacks_and_as_an_async_iterator(zoo_client: ModuleType, zoo_url: str) -> None:
    z = zoo_client

    async def main() -> None:
        async with z.Client(zoo_url, **options()) as client:
            heard: list[Any] = []
            stop = client.on_tick(heard.append)
            ticks = client.tick_events()
            await client.zoo_tick()
            first = await asyncio.wait_for(anext(ticks), 5)
            assert first == z.Tick(n=1)
            assert heard == [z.Tick(n=1)]
            stop()
            await client.zoo_tick()
            assert await asyncio.wait_for(anext(ticks), 5) == z.Tick(n=1)
            assert heard == [z.Tick(n=1)]  # unsubscribed
            await ticks.aclose()

    asyncio.run(main())


def test_reconnects_when_the_server_drops_the_socket(zoo_client: ModuleType, zoo_url: str) -> None:
    z = zoo_client

    async def main() -> None:
        async with z.Client(zoo_url, **options()) as client:
            states: list[str] = []
            client.on_state_change(states.append)
            in_flight = asyncio.ensure_future(client.zoo_echo(z.EchoIn(text="x", delay=1)))
            await asyncio.sleep(0.1)
            with pytest.raises(z.ActionCallError) as dropped:
                await client.zoo_drop()  # the server closes this socket before answering
            assert dropped.value.code == "connection_lost"
            with pytest.raises(z.ActionCallError) as lost:
                await in_flight
            assert lost.value.code == "connection_lost"  # never resent: it may have run
            # A call made while reconnecting waits in the queue and goes out once open.
            assert await client.zoo_echo(z.EchoIn(text="back")) == z.EchoOut(text="back", count=1)
            assert states[:2] == ["reconnecting", "open"]

    asyncio.run(main())


def test_reconnects_after_the_whole_server_went_away(zoo_client: ModuleType) -> None:
    z = zoo_client
    port = free_port()
    app = codegen_zoo.app()

    async def main() -> None:
        # The server starts and stops in a worker thread: its shutdown waits for the client's
        # side of the closing handshake, which this loop must be free to run.
        server = ExitStack()
        await asyncio.to_thread(server.enter_context, serve(app, port=port))
        client = z.Client(f"ws://127.0.0.1:{port}/", **options())
        await client.connect()
        assert await client.zoo_echo(z.EchoIn(text="1")) == z.EchoOut(text="1", count=1)
        await asyncio.to_thread(server.close)
        # The server is gone: the client backs off and keeps trying.
        for _ in range(500):
            if client.connection_state == "reconnecting":
                break
            await asyncio.sleep(0.01)
        assert client.connection_state == "reconnecting"
        waiting = asyncio.ensure_future(client.zoo_echo(z.EchoIn(text="2"), timeout=20))
        await asyncio.sleep(0.3)  # a few refused attempts
        await asyncio.to_thread(server.enter_context, serve(app, port=port))
        try:
            assert await waiting == z.EchoOut(text="2", count=1)
            await client.close()
        finally:
            await asyncio.to_thread(server.close)
        assert client.connection_state == "closed"
        with pytest.raises(z.ActionCallError) as closed:
            await client.zoo_echo(z.EchoIn(text="3"))
        assert closed.value.code == "closed"

    asyncio.run(main())


def test_the_generated_module_needs_no_mangum_ws(zoo_client_path: Path) -> None:
    # A service calling the API installs websockets and pydantic, not the server library.
    source = zoo_client_path.read_text()
    assert "mangum_ws" not in source.replace("python -m mangum_ws.codegen", "")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import runpy; runpy.run_path({str(zoo_client_path)!r})"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=zoo_client_path.parent,
    )
    assert result.returncode == 0, result.stderr


def test_keep_alive_frames_go_out_and_an_unreachable_server_times_out(
    zoo_client: ModuleType,
) -> None:
    z = zoo_client
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve

    async def main() -> None:
        heard: list[str | bytes] = []

        async def record(socket: ServerConnection) -> None:
            async for frame in socket:
                heard.append(frame)

        async with ws_serve(record, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            # Sessions off: this server is no mangum-ws, and says nothing to a $hello.
            async with z.Client(
                f"ws://127.0.0.1:{port}/", keepalive=0.05, sessions=False
            ) as client:
                for _ in range(200):
                    if len(heard) >= 2:
                        break
                    await asyncio.sleep(0.01)
                assert client.connection_state == "open"
        assert heard[:2] == ['{"action":"$keepalive"}'] * 2
        # Nobody listening: connect() gives up after the client's timeout, with a typed error.
        client = z.Client(f"ws://127.0.0.1:{free_port()}/", timeout=0.3, **options())
        with pytest.raises(z.ActionCallError) as refused:
            await client.connect()
        assert refused.value.code == "timeout"
        assert client.connection_state == "closed"

    asyncio.run(main())


def test_a_listener_that_raises_never_stops_the_client(
    zoo_client: ModuleType, zoo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    z = zoo_client

    async def main() -> None:
        async with z.Client(zoo_url, **options()) as client:

            def broken(tick: Any) -> None:
                raise RuntimeError("listener bug")

            client.on_tick(broken)
            async with client.tick_events() as ticks:
                await client.zoo_tick()
                assert await asyncio.wait_for(anext(ticks), 5) == z.Tick(n=1)
            assert await client.zoo_echo(z.EchoIn(text="on")) == z.EchoOut(text="on", count=1)

    asyncio.run(main())
    assert "a 'tick' listener raised" in caplog.text
