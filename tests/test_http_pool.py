"""The keep-alive HTTP/1.1 pool under the Management API, against servers on 127.0.0.1 that
misbehave on purpose: closes, resets, split and doubled answers, late answers, garbage, full
backlogs, proxies that refuse. The pool is used directly (on asyncio's loop and on uvloop's,
whose transports differ) and through AwsGateway where botocore's exceptions and retries matter.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
import uvloop
from botocore import exceptions as botocore_errors
from botocore.exceptions import ClientError

from mangum_ws import AwsGateway, ConnectionGone
from mangum_ws.gateways.http_pool import (
    ConnectFailed,
    ConnectionDropped,
    ConnectTimedOut,
    HttpPool,
    Origin,
    ProxyFailed,
    ReadTimedOut,
    Response,
    TlsFailed,
)
from tests.support.connect_proxy import connect_proxy
from tests.support.management_api import management_api
from tests.support.raw_http import (
    Peer,
    RawRequest,
    RawServer,
    answer,
    chunked,
    full_backlog,
    keep_alive,
    raw_server,
)
from tests.support.server import free_port

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=list(LOOPS))
def run(request: pytest.FixtureRequest) -> Run[Any]:
    """Run a test's coroutine on a new loop of the kind under test."""

    def run_on(coroutine: Coroutine[Any, Any, Any]) -> Any:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
            return runner.run(coroutine)

    return run_on


@contextmanager
def pool_for(
    url: str,
    *,
    size: int = 2,
    read_timeout: float = 10.0,
    connect_timeout: float = 5.0,
    proxy: str | None = None,
    tls: ssl.SSLContext | None = None,
    idle_timeout: float = 60.0,
) -> Iterator[HttpPool]:
    """A pool to ``url``, closed when the block ends."""
    pool = HttpPool(
        Origin.of(url, proxy),
        size=size,
        tls=tls,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        idle_timeout=idle_timeout,
    )
    try:
        yield pool
    finally:
        pool.close()


def post(pool: HttpPool, body: bytes = b"hello") -> Coroutine[Any, Any, Response]:
    head = pool.head("POST", "/@connections/a", f"Host: {pool.origin.authority}\r\n", len(body))
    return pool.request(head, body)


def numbered(peer: Peer, request: RawRequest) -> bytes:
    """200 saying which connection (in the server's order) carried the request."""
    return answer(200, f"connection {peer.number}".encode())


async def until(server: RawServer, condition: Callable[[RawServer], bool]) -> None:
    await asyncio.to_thread(server.wait_for, condition)


def all_closed(server: RawServer) -> bool:
    return server.open == 0


# Keep-alive, and when a connection must not be reused


def test_an_idle_connection_the_server_closed_is_replaced(run: Run[None]) -> None:
    def one_answer_then_close(peer: Peer) -> None:
        if peer.read_request() is not None:
            peer.send(numbered(peer, RawRequest(b"", b"")))

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            assert (await post(pool)).body == b"connection 1"
            await until(server, all_closed)  # closed while idle in the pool
            assert (await post(pool)).body == b"connection 2"  # no error surfaces

    with raw_server(one_answer_then_close) as server:
        run(main(server))
        assert server.accepted == 2


def test_keep_alive_reuses_one_connection(run: Run[None]) -> None:
    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=4) as pool:
            for _ in range(5):
                assert (await post(pool)).body == b"connection 1"

    with raw_server(keep_alive(numbered)) as server:
        run(main(server))
        assert server.accepted == 1


def test_a_connection_idle_past_the_idle_timeout_is_replaced(run: Run[None]) -> None:
    # The server would keep it open: the client does not trust a socket that long idle (a
    # Lambda thawing after a freeze would find it closed by the peer, unread).
    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1, idle_timeout=0.2) as pool:
            assert (await post(pool)).body == b"connection 1"
            assert (await post(pool)).body == b"connection 1"  # within the idle timeout
            await asyncio.sleep(0.3)  # the thing under test is time itself
            assert (await post(pool)).body == b"connection 2"
            await until(server, lambda s: s.open == 1)  # the old one closed by the client

    with raw_server(keep_alive(numbered)) as server:
        run(main(server))
        assert server.accepted == 2


def test_connection_close_answers_are_not_reused(run: Run[None]) -> None:
    # The server keeps reading after saying "close": only the client can end the connection.
    def says_close(peer: Peer, request: RawRequest) -> bytes:
        return answer(200, f"connection {peer.number}".encode(), headers="Connection: close\r\n")

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            assert (await post(pool)).body == b"connection 1"
            assert (await post(pool)).body == b"connection 2"
            await until(server, all_closed)  # the client closed both: they said "close"

    with raw_server(keep_alive(says_close)) as server:
        run(main(server))
        assert server.accepted == 2


def test_an_http_1_0_answer_is_not_reused(run: Run[None]) -> None:
    def old(peer: Peer, request: RawRequest) -> bytes:
        return f"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n{peer.number}".encode()

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            assert [(await post(pool)).body for _ in range(2)] == [b"1", b"2"]

    with raw_server(keep_alive(old)) as server:
        run(main(server))


# Framing: chunked, read until close, split and doubled answers


def test_a_chunked_error_answer_is_parsed(run: Run[None]) -> None:
    body = json.dumps({"message": "GoneException"}).encode()

    def gone(peer: Peer, request: RawRequest) -> bytes:
        return chunked(410, body, headers="x-amzn-ErrorType: GoneException\r\n", pieces=4)

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            for _ in range(2):  # and the connection stays usable after it
                response = await post(pool)
                assert (response.status, response.body) == (410, body)
                assert response.headers["x-amzn-errortype"] == "GoneException"
                assert response.headers["transfer-encoding"] == "chunked"

    with raw_server(keep_alive(gone)) as server:
        run(main(server))
        assert server.accepted == 1


def test_chunked_error_answers_become_gone_and_client_errors_through_aws_gateway() -> None:
    def by_id(peer: Peer, request: RawRequest) -> bytes:
        status, error = (410, "Gone") if "/gone" in request.line else (403, "Forbidden")
        body = json.dumps({"message": f"no: {error}"}).encode()
        return chunked(status, body, headers=f"x-amzn-ErrorType: {error}Exception\r\n")

    with raw_server(keep_alive(by_id)) as server:
        gateway = AwsGateway(server.url, max_attempts=1)
        with pytest.raises(ConnectionGone) as gone:
            asyncio.run(gateway.post("gone", b"x"))
        assert isinstance(gone.value.__cause__, ClientError)
        assert gone.value.__cause__.response["Error"]["Code"] == "GoneException"
        with pytest.raises(ClientError) as forbidden:
            asyncio.run(gateway.post("other", b"x"))
        assert forbidden.value.response["Error"] == {
            "Code": "ForbiddenException",
            "Message": "no: Forbidden",
        }
        assert forbidden.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_answer_without_length_is_read_until_close(run: Run[None]) -> None:
    def unframed(peer: Peer) -> None:
        if peer.read_request() is not None:
            peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
            peer.send(b"all of ")
            peer.send(b"it")

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            response = await post(pool)
            assert (response.status, response.body) == (200, b"all of it")
            assert (await post(pool)).body == b"all of it"  # on a new connection

    with raw_server(unframed) as server:
        run(main(server))
        assert server.accepted == 2


def test_an_answer_without_length_cut_by_a_reset_is_dropped(run: Run[None]) -> None:
    # Read-until-close ends at a clean close only: a reset means the body may be cut short.
    def reset_mid_body(peer: Peer) -> None:
        if peer.read_request() is not None:
            peer.send(b"HTTP/1.1 200 OK\r\n\r\npart of")
            peer.reset()

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool, pytest.raises(ConnectionDropped):
            await post(pool)

    with raw_server(reset_mid_body) as server:
        run(main(server))


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_answer_split_byte_by_byte(run: Run[None], framing: str) -> None:
    body = b'{"message": "split"}'
    whole = answer(201, body) if framing == "content-length" else chunked(201, body)

    def dribble(peer: Peer, request: RawRequest) -> bytes:
        for byte in whole[:-1]:
            peer.send(bytes([byte]))  # TCP_NODELAY: one segment each
        return whole[-1:]

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            for _ in range(2):
                response = await post(pool)
                assert (response.status, response.body) == (201, body)

    with raw_server(keep_alive(dribble)) as server:
        run(main(server))
        assert server.accepted == 1  # still keep-alive


def test_two_answers_in_one_segment_drop_the_connection(run: Run[None]) -> None:
    def doubled(peer: Peer, request: RawRequest) -> bytes:
        return answer(200, f"mine {peer.number}".encode()) + answer(200, b"not asked for")

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            assert (await post(pool)).body == b"mine 1"
            assert (await post(pool)).body == b"mine 2"  # a new connection, its own answer

    with raw_server(keep_alive(doubled)) as server:
        run(main(server))
        assert server.accepted == 2


def test_an_answer_arriving_on_an_idle_connection_drops_it(run: Run[None]) -> None:
    def then_unasked(peer: Peer) -> None:
        if peer.read_request() is not None:
            peer.send(answer(200, f"mine {peer.number}".encode()))
            if peer.number == 1:
                peer.send(answer(200, b"not asked for"))
                peer.wait_closed()
            else:
                keep_alive(numbered)(peer)

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            assert (await post(pool)).body == b"mine 1"
            await until(server, all_closed)  # the client dropped it, idle, on its own
            assert (await post(pool)).body == b"mine 2"

    with raw_server(then_unasked) as server:
        run(main(server))


def test_interim_1xx_answers_are_skipped(run: Run[None]) -> None:
    def with_interim(peer: Peer, request: RawRequest) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + (
            answer(200, b"final")
        )

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            for _ in range(2):
                response = await post(pool)
                assert (response.status, response.body) == (200, b"final")

    with raw_server(keep_alive(with_interim)) as server:
        run(main(server))
        assert server.accepted == 1


# Timeouts, refusals, garbage, resets


def test_a_read_timeout_drops_the_connection_and_its_late_answer(run: Run[None]) -> None:
    late = threading.Event()
    late_sent = threading.Event()

    def slow_first(peer: Peer) -> None:
        if peer.number == 1 and peer.read_request() is not None:
            late.wait(10)
            try:
                peer.send(answer(200, b"late"))
            finally:
                late_sent.set()
        keep_alive(numbered)(peer)  # would answer a second request on this connection too

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1, read_timeout=0.2) as pool:
            with pytest.raises(ReadTimedOut):
                await post(pool)
            late.set()
            await asyncio.to_thread(late_sent.wait, 10)
            assert (await post(pool)).body == b"connection 2"
            await until(server, lambda s: s.open == 1)  # the timed-out one was closed

    with raw_server(slow_first) as server:
        run(main(server))


def test_read_timeouts_are_retried_by_aws_gateway_as_botocores() -> None:
    def first_never_answers(peer: Peer) -> None:
        if peer.number == 1:
            peer.read_request()
            peer.wait_closed()
        else:
            keep_alive(numbered)(peer)

    with raw_server(first_never_answers) as server:
        gateway = AwsGateway(server.url, read_timeout=0.2, max_attempts=2, backoff_base=0.001)
        asyncio.run(gateway.post("a", b"x"))  # the second attempt is delivered
        assert [r.line.split()[1] for r in server.requests] == ["/@connections/a"] * 2
    with raw_server(first_never_answers) as server:
        once = AwsGateway(server.url, read_timeout=0.2, max_attempts=1)
        with pytest.raises(botocore_errors.ReadTimeoutError) as info:
            asyncio.run(once.post("a", b"x"))
        assert isinstance(info.value.__cause__, ReadTimedOut)


def test_a_refused_connection_is_connect_failed(run: Run[None]) -> None:
    async def main() -> None:
        with pool_for(f"http://127.0.0.1:{free_port()}") as pool:
            with pytest.raises(ConnectFailed) as info:
                await post(pool)
            assert type(info.value) is ConnectFailed

    run(main())
    gateway = AwsGateway(f"http://127.0.0.1:{free_port()}", max_attempts=1)
    with pytest.raises(botocore_errors.EndpointConnectionError) as boto:
        asyncio.run(gateway.post("a", b"x"))
    assert "Could not connect to the endpoint URL" in str(boto.value)


def test_a_full_backlog_is_a_connect_timeout(run: Run[None]) -> None:
    async def main(port: int) -> None:
        with (
            pool_for(f"http://127.0.0.1:{port}", connect_timeout=0.2) as pool,
            pytest.raises(ConnectTimedOut),
        ):
            await post(pool)

    with full_backlog() as port:
        run(main(port))
        gateway = AwsGateway(f"http://127.0.0.1:{port}", connect_timeout=0.2, max_attempts=1)
        with pytest.raises(botocore_errors.ConnectTimeoutError):
            asyncio.run(gateway.post("a", b"x"))


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(40)),
        b"HTTP/1.1 abc Nope\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n",
    ],
    ids=["ssh", "tls", "status", "length", "both-framings", "chunk-size", "upgrade"],
)
def test_garbage_is_a_dropped_connection(run: Run[None], garbage: bytes) -> None:
    # The server sends it and keeps the connection open: only the parser can end the wait.
    def not_http(peer: Peer) -> None:
        if peer.read_request() is not None:
            peer.send(garbage)
            peer.wait_closed()

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            with pytest.raises(ConnectionDropped):
                await post(pool)
            await until(server, all_closed)

    with raw_server(not_http) as server:
        run(main(server))


def test_a_reset_mid_answer_is_dropped_and_retried_by_aws_gateway(run: Run[None]) -> None:
    def reset_first(peer: Peer) -> None:
        if peer.number == 1:
            if peer.read_request() is not None:
                peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nnot all")
                peer.reset()
        else:
            keep_alive(numbered)(peer)

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            with pytest.raises(ConnectionDropped):
                await post(pool)
            assert (await post(pool)).body == b"connection 2"

    with raw_server(reset_first) as server:
        run(main(server))
    with raw_server(reset_first) as server:
        gateway = AwsGateway(server.url, max_attempts=2, backoff_base=0.001)
        asyncio.run(gateway.post("a", b"x"))
        assert server.accepted == len(server.requests) == 2


def test_a_connection_closed_before_the_request_fails_at_once(run: Run[None]) -> None:
    # Accepted and closed at once: the request fails as dropped, whether the close is seen
    # before the request is written or after, and never waits out the read timeout.
    def close_at_once(peer: Peer) -> None:
        if peer.number > 1:
            keep_alive(numbered)(peer)

    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1, read_timeout=30) as pool:
            with pytest.raises(ConnectionDropped):
                await post(pool)
            assert (await post(pool)).body.startswith(b"connection ")

    with raw_server(close_at_once) as server:
        run(main(server))


# Cancellation, bounds, close


def hang_first(count: int) -> Callable[[Peer], None]:
    """Connections 1..count read a request and never answer; later ones answer each one."""

    def script(peer: Peer) -> None:
        if peer.number <= count:
            peer.read_request()
            peer.wait_closed()
        else:
            keep_alive(numbered)(peer)

    return script


def test_cancelled_callers_free_their_connections(run: Run[None]) -> None:
    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=2) as pool:
            stuck = [asyncio.create_task(post(pool)) for _ in range(3)]  # the third one waits
            await until(server, lambda s: len(s.requests) == 2)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
            assert all(task.cancelled() for task in stuck)
            await until(server, all_closed)  # both dropped: their answers may still come
            answers = await asyncio.wait_for(asyncio.gather(*(post(pool) for _ in range(7))), 10)
            assert {a.status for a in answers} == {200}

    with raw_server(hang_first(2)) as server:
        run(main(server))
        assert server.most_open <= 2
        assert server.accepted == 4


def test_a_cancelled_waiter_passes_its_turn_on(run: Run[None]) -> None:
    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=1) as pool:
            first = asyncio.create_task(post(pool))
            await until(server, lambda s: len(s.requests) == 1)
            waiting = [asyncio.create_task(post(pool)) for _ in range(2)]
            await asyncio.sleep(0)  # both are queued for the one connection
            waiting[0].cancel()
            first.cancel()  # frees the connection: the turn goes to the second waiter
            assert (await asyncio.wait_for(waiting[1], 10)).status == 200
            await asyncio.gather(first, waiting[0], return_exceptions=True)

    with raw_server(hang_first(1)) as server:
        run(main(server))
        assert server.accepted == 2  # the cancelled one's connection was dropped, not reused


def test_more_requests_than_connections(run: Run[None]) -> None:
    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=3) as pool:
            answers = await asyncio.gather(*(post(pool, f"{i}".encode()) for i in range(40)))
            assert {a.status for a in answers} == {200}
        await until(server, all_closed)
        with pytest.raises(ConnectionDropped, match="closed"):
            await post(pool)

    with raw_server(keep_alive(numbered)) as server:
        run(main(server))
        assert server.most_open <= 3
        assert len(server.requests) == 40


def test_close_fails_requests_in_flight_and_waiting(run: Run[None]) -> None:
    async def main(server: RawServer) -> None:
        with pool_for(server.url, size=2) as pool:
            tasks = [asyncio.create_task(post(pool)) for _ in range(4)]
            await until(server, lambda s: len(s.requests) == 2)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert [type(o) for o in outcomes] == [ConnectionDropped] * 4
        await until(server, all_closed)

    with raw_server(hang_first(2)) as server:
        run(main(server))
        assert server.accepted == 2


# HTTPS, through a CONNECT proxy

HOST = "abc.execute-api.invalid"  # resolves nowhere: only a tunnelled request gets through


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST, "127.0.0.1").configure_cert(context)
    return context


def tls_client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def through(
    proxy: RawServer, tls: ssl.SSLContext, credentials: str = "", **options: Any
) -> AbstractContextManager[HttpPool]:
    """A pool to ``https://HOST`` through the CONNECT ``proxy`` (``user:pass@`` credentials)."""
    proxy_url = f"http://{credentials}127.0.0.1:{proxy.port}"
    return pool_for(f"https://{HOST}", proxy=proxy_url, tls=tls, **options)


@pytest.mark.parametrize("credentials", ["", "user:p%40ss@"])
def test_https_through_a_connect_proxy(run: Run[None], ca: trustme.CA, credentials: str) -> None:
    async def main(proxy: RawServer) -> None:
        with through(proxy, tls_client_context(ca), credentials) as pool:
            for _ in range(3):
                assert (await post(pool)).body == b"connection 1"
        await until(proxy, all_closed)

    with (
        raw_server(keep_alive(numbered), tls=tls_server_context(ca)) as server,
        connect_proxy(server.port) as proxy,
    ):
        run(main(proxy))
        assert [r.line for r in proxy.requests] == [f"CONNECT {HOST}:443 HTTP/1.1"]
        expected = "Basic dXNlcjpwQHNz" if credentials else None  # base64 of user:p@ss
        assert proxy.requests[0].header("proxy-authorization") == expected
        assert proxy.requests[0].header("host") == f"{HOST}:443"
        assert server.accepted == 1
        # the origin sees the request itself, not the proxy's credentials
        assert server.requests[0].line == "POST /@connections/a HTTP/1.1"
        assert server.requests[0].header("proxy-authorization") is None


def test_https_straight_to_the_origin(run: Run[None], ca: trustme.CA) -> None:
    async def main(server: RawServer) -> None:
        with pool_for(server.url, tls=tls_client_context(ca)) as pool:
            assert [(await post(pool)).body for _ in range(3)] == [b"connection 1"] * 3
        with (
            pool_for(server.url, tls=ssl.create_default_context()) as untrusted,
            pytest.raises(TlsFailed, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            await post(untrusted)
        await until(server, all_closed)

    with raw_server(keep_alive(numbered), tls=tls_server_context(ca)) as server:
        run(main(server))
        assert server.accepted == 2


def test_an_untrusted_certificate_through_a_proxy_is_tls_failed(
    run: Run[None], ca: trustme.CA
) -> None:
    async def main(proxy: RawServer) -> None:
        with (
            through(proxy, ssl.create_default_context()) as pool,
            pytest.raises(TlsFailed, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            await post(pool)
        await until(proxy, all_closed)

    with (
        raw_server(keep_alive(numbered), tls=tls_server_context(ca)) as server,
        connect_proxy(server.port) as proxy,
    ):
        run(main(proxy))


def test_a_proxy_refusing_connect_is_proxy_failed(run: Run[None], ca: trustme.CA) -> None:
    async def main(proxy: RawServer) -> None:
        with (
            through(proxy, tls_client_context(ca)) as pool,
            pytest.raises(ProxyFailed, match="407"),
        ):
            await post(pool)
        await until(proxy, all_closed)

    with connect_proxy(free_port(), refuse=407) as proxy:
        run(main(proxy))


def test_a_proxy_that_never_answers_connect_times_out_and_is_closed(
    run: Run[None], ca: trustme.CA
) -> None:
    async def main(proxy: RawServer) -> None:
        with (
            through(proxy, tls_client_context(ca), connect_timeout=0.2) as pool,
            pytest.raises(ConnectTimedOut),
        ):
            await post(pool)
        await until(proxy, all_closed)  # the half-made tunnel is not left open

    with connect_proxy(free_port(), silent=True) as proxy:
        run(main(proxy))


def test_a_pool_closed_while_connecting_drops_the_new_connection(
    run: Run[None], ca: trustme.CA
) -> None:
    # The tunnel is made only after close(): the request must not go out on it.
    hold = threading.Event()

    async def main(proxy: RawServer) -> None:
        with through(proxy, tls_client_context(ca)) as pool:
            task = asyncio.create_task(post(pool))
            await until(proxy, lambda s: len(s.requests) == 1)  # the CONNECT is waiting
        hold.set()
        with pytest.raises(ConnectionDropped, match="closed"):
            await task
        await until(proxy, all_closed)

    with (
        raw_server(keep_alive(numbered), tls=tls_server_context(ca)) as server,
        connect_proxy(server.port, hold=hold) as proxy,
    ):
        run(main(proxy))
        assert server.requests == []


@pytest.fixture
def via_proxy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ca: trustme.CA) -> None:
    for name in ("NO_PROXY", "no_proxy", "https_proxy", "HTTPS_PROXY", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "ca.pem"))


@pytest.mark.parametrize("credentials", ["", "me:secret@"])
@pytest.mark.usefixtures("via_proxy")
def test_aws_gateway_posts_https_through_https_proxy(
    monkeypatch: pytest.MonkeyPatch, ca: trustme.CA, credentials: str
) -> None:
    with (
        management_api(tls=tls_server_context(ca)) as api,
        connect_proxy(int(api.url.rsplit(":", 1)[1])) as proxy,
    ):
        monkeypatch.setenv("HTTPS_PROXY", f"http://{credentials}127.0.0.1:{proxy.port}")
        gateway = AwsGateway(f"https://{HOST}/prod")
        asyncio.run(gateway.post("a", b'{"x": 1}'))
        asyncio.run(gateway.delete("a"))
        assert api.posts == [("a", b'{"x": 1}')]
        assert api.deletes == ["a"]
        assert [r.line for r in proxy.requests] == [f"CONNECT {HOST}:443 HTTP/1.1"]
        expected = "Basic bWU6c2VjcmV0" if credentials else None  # base64 of me:secret
        assert proxy.requests[0].header("proxy-authorization") == expected


@pytest.mark.usefixtures("via_proxy")
def test_aws_gateway_turns_a_proxy_refusal_into_proxy_connection_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with connect_proxy(free_port(), refuse=407) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        gateway = AwsGateway(f"https://{HOST}/prod", max_attempts=1)
        with pytest.raises(botocore_errors.ProxyConnectionError) as info:
            asyncio.run(gateway.post("a", b"x"))
        assert isinstance(info.value.__cause__, ProxyFailed)
