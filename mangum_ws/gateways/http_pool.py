"""Keep-alive HTTP/1.1 connections to one origin: the transport under every Management API call.

Why not a general-purpose client: a fan-out sends thousands of small, identical-shape requests
to one host, and the whole cost of a post is the client's own bookkeeping. Measured with
``benchmarks/fanout.py --clients`` (same 32 connections, same endpoint, 0 ms): aiohttp spends
~280-320 us of CPU per request, urllib3 in threads ~630, httpx several ms, while the network
part of a post (write the bytes, parse the answer) costs ~30. So the parts that are hard to get
right come from maintained libraries: the response parser is httptools (llhttp, the parser of
Node and uvicorn), TLS and sockets are the event loop's (uvloop's when installed). What is left
here is small: a pool of protocols, one request in flight on each, timeouts, and an HTTP proxy
(``CONNECT`` for https, absolute-form requests for http) as botocore supports one.

Every failure is one of this module's exceptions (all :class:`HttpError`), so the caller can
turn them into the botocore exceptions boto3 would raise.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import httptools

__all__ = [
    "ConnectFailed",
    "ConnectTimedOut",
    "ConnectionDropped",
    "HttpError",
    "HttpPool",
    "Origin",
    "ProxyFailed",
    "ReadTimedOut",
    "Response",
    "TlsFailed",
]


# A connection idle this long is not used again (aiohttp's keep-alive default). A peer closes idle
# connections on a timer of its own, and a Lambda frozen between invocations does not see that
# close until it thaws: the loop has not yet read the FIN when the first post takes the socket,
# and that post would fail (and be retried). Past this, a fresh connection is opened instead.
IDLE_TIMEOUT = 15.0


class HttpError(Exception):
    """A request that got no (complete) answer."""


class ConnectFailed(HttpError):
    """The TCP connection could not be opened (refused, unreachable, name not resolved)."""


class ConnectTimedOut(ConnectFailed):
    """The TCP connection (and TLS handshake) took longer than the connect timeout."""


class TlsFailed(ConnectFailed):
    """The TLS handshake failed: an untrusted certificate, a wrong host name."""


class ProxyFailed(ConnectFailed):
    """The proxy could not be reached, or refused the ``CONNECT``."""


class ReadTimedOut(HttpError):
    """No complete answer within the read timeout (the connection is dropped)."""


class ConnectionDropped(HttpError):
    """The connection closed, or sent what is not HTTP, before the answer was complete."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case, as botocore reports them
    body: bytes


@dataclass(frozen=True, slots=True)
class Origin:
    """Where requests go: ``scheme://host:port``, perhaps through an HTTP proxy."""

    scheme: str
    host: str
    port: int
    proxy: str | None = None

    @property
    def authority(self) -> str:
        """The host as a URL names it (an IPv6 literal in brackets)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    @classmethod
    def of(cls, url: str, proxy: str | None = None) -> Origin:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname or "", port, proxy)


class _Connection(asyncio.Protocol):
    """One socket; one request at a time; the answer parsed by httptools as bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.idle_until = 0.0  # set each time it goes back to the pool
        self._answer: asyncio.Future[Response] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._headers_done = False
        self._framed = False  # Content-Length or chunked: the end of the body is known

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            # (An upgrade is not an error to httptools, but nothing here asked for one.)
            self.fail(ConnectionDropped(f"the endpoint's answer is not HTTP/1.1: {exc!r}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is None or answer.done():
            return
        if self._headers_done and not self._framed and exc is None:
            # A body read until close is complete when the peer closes (a reset is no end:
            # the body may have been cut short).
            self._complete()
        else:
            reason = f": {exc}" if exc else ""
            answer.set_exception(ConnectionDropped(f"the connection closed mid-answer{reason}"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self._answer is None:  # an answer nobody asked for: this connection is unusable
            self.fail(ConnectionDropped("the endpoint answered a request that was not sent"))
        self._headers_done = False
        self._headers = {}
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True
        headers = self._headers
        encoding = headers.get("transfer-encoding", "").lower()
        self._framed = "content-length" in headers or "chunked" in encoding

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            if status == 101:  # switched to another protocol: no answer will come
                self.fail(ConnectionDropped("the endpoint switched protocols (101)"))
            # else an interim answer (100 Continue, 103 Early Hints): the final one follows,
            # and a client must take any number of them (RFC 9110, 15.2).
            return
        self.reusable = self.reusable and self._parser.should_keep_alive()
        self._complete()

    # the request
    def _complete(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            status = self._parser.get_status_code()
            answer.set_result(Response(status, self._headers, b"".join(self._body)))

    def fail(self, error: HttpError) -> None:
        self.reusable = False
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self) -> bool:
        """Open, and fit for another request. A transport that saw the peer's close is
        closing before ``connection_lost`` runs (a loop iteration later): it counts too."""
        transport = self.transport
        return (
            not self.closed
            and self.reusable
            and transport is not None
            and not transport.is_closing()
        )

    async def exchange(self, request: bytes, within: float) -> Response:
        """Write ``request``; its answer, or ReadTimedOut after ``within`` seconds (a timer
        handle, cheaper per request than ``asyncio.timeout``'s context)."""
        assert self.transport is not None
        answer: asyncio.Future[Response] = self._loop.create_future()
        self._answer = answer
        self._headers_done = False
        self.transport.write(request)
        timer = self._loop.call_later(within, self._time_out, answer, within)
        try:
            return await answer
        except asyncio.CancelledError:
            self.fail(ConnectionDropped("cancelled"))  # its answer may still come: not reusable
            raise
        finally:
            timer.cancel()

    def _time_out(self, answer: asyncio.Future[Response], within: float) -> None:
        if answer is self._answer:
            self.fail(ReadTimedOut(f"no complete answer within {within:g} s"))


class HttpPool:
    """Up to ``size`` keep-alive connections to ``origin``; lives on the loop that first uses it.

    A connection carries one request at a time; one that is closed by the peer while idle, has
    been idle longer than ``idle_timeout``, or answered ``Connection: close`` is dropped and
    replaced by a new one at the next request.
    """

    def __init__(
        self,
        origin: Origin,
        *,
        size: int,
        tls: ssl.SSLContext | None,
        connect_timeout: float,
        read_timeout: float,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.origin = origin
        self.size = size
        self._idle_timeout = idle_timeout
        self._tls = tls if origin.scheme == "https" else None
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: collections.deque[_Connection] = collections.deque()
        self._open = 0  # connections counted against ``size``: idle, busy or being opened
        self._connections: set[_Connection] = set()  # the open ones, for close()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        proxy = urlsplit(origin.proxy) if origin.proxy else None
        self._proxy = proxy
        # Through a proxy, a plain-http request names the whole URL (absolute-form) and carries
        # the proxy's credentials; an https one goes through a CONNECT tunnel instead.
        self._absolute = proxy is not None and self._tls is None
        authority = origin.authority if origin.port == 80 else f"{origin.authority}:{origin.port}"
        self._target_prefix = f"http://{authority}".encode() if self._absolute else b""
        self._proxy_auth = _proxy_authorization(proxy) if proxy is not None else ""

    def head(self, method: str, path: str, header_lines: str, length: int) -> bytes:
        """The request's head: ``header_lines`` are ``Name: value\\r\\n`` lines (Host included)."""
        extra = self._proxy_auth if self._absolute else ""
        return (
            f"{method} ".encode()
            + self._target_prefix
            + f"{path} HTTP/1.1\r\n{header_lines}{extra}Content-Length: {length}\r\n\r\n".encode()
        )

    async def request(self, head: bytes, body: bytes) -> Response:
        """Send one request (``head`` from :meth:`head`, then ``body``); its answer."""
        connection = await self._acquire()
        try:
            return await connection.exchange(head + body, self._read_timeout)
        finally:
            self._release(connection)

    async def _acquire(self) -> _Connection:
        while True:
            if self._closed:
                raise ConnectionDropped("the HTTP pool is closed")
            while self._idle:
                connection = self._idle.pop()  # the most recent: least likely to be timed out
                if connection.usable and time.monotonic() < connection.idle_until:
                    return connection
                self._drop(connection)  # closed by the peer, or idle too long: open a new one
            if self._open < self.size:
                self._open += 1
                try:
                    connection = await self._connect()
                except BaseException:
                    self._open -= 1
                    self._wake_one()
                    raise
                self._connections.add(connection)
                if self._closed or not connection.usable:
                    # The pool was closed while this one was being opened, or the peer closed
                    # it at once: a request written now would never be answered.
                    self._drop(connection)
                    self._wake_one()
                    closed = "the HTTP pool is" if self._closed else "the connection was"
                    raise ConnectionDropped(f"{closed} closed before the request was sent")
                return connection
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass on the turn this waiter was given
                raise

    def _release(self, connection: _Connection) -> None:
        if connection.usable and not self._closed:
            connection.idle_until = time.monotonic() + self._idle_timeout
            self._idle.append(connection)
        else:
            self._drop(connection)
        self._wake_one()

    def _drop(self, connection: _Connection) -> None:
        connection.close()
        self._connections.discard(connection)
        self._open -= 1

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._proxy is not None and self._tls is not None:
                    return await self._tunnel(loop)
                host, port = self._first_hop()
                transport, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    host,
                    port,
                    ssl=self._tls,
                    server_hostname=self.origin.host if self._tls else None,
                )
                _keep_alive(transport)
                return connection
        except TimeoutError:
            raise ConnectTimedOut(
                f"no connection to {self._first_hop_name()} within {self._connect_timeout:g} s"
            ) from None
        except ssl.SSLError as exc:
            raise TlsFailed(f"TLS with {self.origin.host} failed: {exc}") from exc
        except OSError as exc:
            failure = ProxyFailed if self._proxy is not None else ConnectFailed
            raise failure(f"cannot connect to {self._first_hop_name()}: {exc}") from exc

    def _first_hop(self) -> tuple[str, int]:
        if self._proxy is not None:
            return self._proxy.hostname or "", self._proxy.port or 80
        return self.origin.host, self.origin.port

    def _first_hop_name(self) -> str:
        host, port = self._first_hop()
        return f"{'proxy ' if self._proxy is not None else ''}{host}:{port}"

    async def _tunnel(self, loop: asyncio.AbstractEventLoop) -> _Connection:
        """An https origin through an HTTP proxy: ``CONNECT host:port``, then TLS inside."""
        host, port = self._first_hop()
        transport, tunnel = await loop.create_connection(_TunnelAnswer, host, port)
        try:
            _keep_alive(transport)
            target = f"{self.origin.authority}:{self.origin.port}"
            transport.write(
                f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{self._proxy_auth}\r\n".encode()
            )
            status = await tunnel.status
            if status != 200:
                raise ProxyFailed(f"the proxy answered CONNECT {target} with {status}")
            connection = _Connection(loop)
            assert self._tls is not None
            tls_transport = await loop.start_tls(
                transport, connection, self._tls, server_hostname=self.origin.host
            )
        except BaseException:
            transport.close()  # a refusal, a timeout, a failed handshake: no socket left open
            raise
        assert tls_transport is not None
        connection.connection_made(tls_transport)
        return connection

    def close(self) -> None:
        """Close every connection; requests still in flight or waiting for a connection fail
        with ConnectionDropped, and so do requests made after."""
        self._closed = True
        self._idle.clear()
        for connection in self._connections:
            connection.fail(ConnectionDropped("the HTTP pool was closed"))
        self._connections.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


class _TunnelAnswer(asyncio.Protocol):
    """Reads the proxy's answer to ``CONNECT`` (its head only: a 200 has no body)."""

    def __init__(self) -> None:
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if b"\r\n\r\n" in self._buffer and not self.status.done():
            line = self._buffer.split(b"\r\n", 1)[0].split()
            self.status.set_result(int(line[1]) if len(line) > 1 and line[1].isdigit() else 0)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_exception(ProxyFailed("the proxy closed the connection on CONNECT"))


def _keep_alive(transport: asyncio.BaseTransport) -> None:
    """Keep-alive probes, so a peer gone while Lambda was frozen is noticed. (The loop already
    sets TCP_NODELAY: without it a small POST could wait ~40 ms on the peer's delayed ACK.)"""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


def _proxy_authorization(proxy: Any) -> str:
    """``Proxy-Authorization`` for a proxy URL with ``user:password@`` (as botocore sends it)."""
    if not proxy.username:
        return ""
    credentials = f"{unquote(proxy.username)}:{unquote(proxy.password or '')}"
    return f"Proxy-Authorization: Basic {base64.b64encode(credentials.encode()).decode()}\r\n"
