"""A raw TCP server on 127.0.0.1 that plays an HTTP/1.1 endpoint badly on purpose.

Each accepted connection runs ``script(peer)`` in a thread of its own; the script reads the
requests and writes whatever bytes the test wants (split, doubled, truncated, late, not HTTP),
so the client's handling of every misbehaviour is tested over a real socket. The server counts
the connections open at once, so a test can check a pool's bound and wait for every socket to be
closed (an event to await, not a sleep).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class RawRequest:
    head: bytes  # the request line and headers, without the blank line
    body: bytes

    @property
    def line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode("latin-1")

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


class Peer:
    """The server's side of one connection."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number  # 1 for the first connection the server accepted
        self._buffer = b""

    def read_request(self) -> RawRequest | None:
        """The next request (head and Content-Length body), or None when the client closed."""
        while b"\r\n\r\n" not in self._buffer:
            if not self._fill():
                return None
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        request = RawRequest(head, b"")
        length = int(request.header("content-length") or 0)
        while len(self._buffer) < length:
            if not self._fill():
                return None
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return RawRequest(head, body)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except OSError:
            return False
        self._buffer += data
        return bool(data)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def wait_closed(self) -> None:
        """Until the client closes its side (its pending bytes are discarded)."""
        while self._fill():
            self._buffer = b""

    def reset(self) -> None:
        """Close with a TCP reset (linger 0), as a crashed server or a middlebox does."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


Script = Callable[[Peer], None]


def answer(status: int = 200, body: bytes = b"", *, headers: str = "") -> bytes:
    """A well-formed answer with a Content-Length (``headers``: extra ``Name: value\\r\\n``)."""
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body


def chunked(status: int, body: bytes, *, headers: str = "", pieces: int = 3) -> bytes:
    """An answer whose body is sent as ``pieces`` chunks (then the zero-length last chunk)."""
    step = max(1, -(-len(body) // pieces))
    chunks = b"".join(
        f"{len(part):x}\r\n".encode() + part + b"\r\n"
        for part in (body[i : i + step] for i in range(0, len(body), step))
    )
    head = f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n{headers}\r\n".encode()
    return head + chunks + b"0\r\n\r\n"


def keep_alive(reply: Callable[[Peer, RawRequest], bytes]) -> Script:
    """Answer every request on the connection with ``reply(peer, request)`` until it closes."""

    def script(peer: Peer) -> None:
        while (request := peer.read_request()) is not None:
            peer.send(reply(peer, request))

    return script


class RawServer:
    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.accepted = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[RawRequest] = []
        self._changed = threading.Condition()
        self._peers: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            with self._changed:
                self.accepted += 1
                self.open += 1
                self.most_open = max(self.most_open, self.open)
                self._peers.add(sock)
                self._changed.notify_all()
                number = self.accepted
            thread = threading.Thread(target=self._run, args=(sock, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, sock: socket.socket, number: int) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_side=True)
            self.script(_Recording(sock, number, self))
        except OSError:
            pass  # the client went away: what a script does next does not matter
        finally:
            sock.close()
            with self._changed:
                self.open -= 1
                self._changed.notify_all()

    def wait_for(self, condition: Callable[[RawServer], bool], timeout: float = 10) -> None:
        """Until ``condition(self)`` holds (it is checked whenever a connection opens or
        closes); AssertionError after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), timeout):
                raise AssertionError(f"the server never got there: {self.open} connections open")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close won't
        self._listener.close()
        self._acceptor.join(timeout=10)
        with self._changed:
            peers = list(self._peers)
        for sock in peers:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=10)


class _Recording(Peer):
    """A peer that keeps every request it reads on the server (for the tests' assertions)."""

    def __init__(self, sock: socket.socket, number: int, server: RawServer) -> None:
        super().__init__(sock, number)
        self._server = server

    def read_request(self) -> RawRequest | None:
        request = super().read_request()
        if request is not None:
            with self._server._changed:
                self._server.requests.append(request)
                self._server._changed.notify_all()
        return request


@contextmanager
def raw_server(script: Script, tls: ssl.SSLContext | None = None) -> Iterator[RawServer]:
    server = RawServer(script, tls)
    server._acceptor.start()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose listener never accepts and whose accept queue is full: Linux drops the SYNs
    of any further connection, so connecting there times out (deterministically, on 127.0.0.1,
    unlike a 'non-routable' address)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port: int = listener.getsockname()[1]
    queued: list[socket.socket] = []
    try:
        for _ in range(16):  # the queue holds backlog + 1 connections; a few more for safety
            probe = socket.socket()
            probe.settimeout(0.2)
            queued.append(probe)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                break
        else:
            raise RuntimeError("the accept queue never filled up")
        yield port
    finally:
        for probe in queued:
            probe.close()
        listener.close()
