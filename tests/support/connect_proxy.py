"""An HTTP proxy on 127.0.0.1 that serves ``CONNECT`` only, as corporate proxies do for https.

Whatever host the client names, the tunnel goes to ``upstream_port`` on 127.0.0.1, so a test
can give its TLS server a host name that does not resolve: only a tunnelled request can reach
it. The ``CONNECT`` requests are kept (``server.requests``) to check ``Proxy-Authorization``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.raw_http import Peer, RawServer, Script, raw_server


def tunnel_to(
    upstream_port: int,
    *,
    refuse: int | None = None,
    silent: bool = False,
    hold: threading.Event | None = None,
) -> Script:
    """Answer ``CONNECT`` with 200 and pipe both ways; with ``refuse``, answer that status and
    close instead; with ``silent``, never answer (until the client gives up and closes); with
    ``hold``, answer once that event is set."""

    def script(peer: Peer) -> None:
        request = peer.read_request()
        if request is None or not request.line.startswith("CONNECT "):
            return
        if silent:
            peer.wait_closed()
            return
        if hold is not None:
            hold.wait(10)
        if refuse is not None:
            peer.send(f"HTTP/1.1 {refuse} No\r\nContent-Length: 0\r\n\r\n".encode())
            return
        with socket.create_connection(("127.0.0.1", upstream_port)) as upstream:
            peer.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
            back = threading.Thread(target=_pipe, args=(upstream, peer.sock), daemon=True)
            back.start()
            _pipe(peer.sock, upstream)
            back.join(timeout=10)

    return script


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)  # pass the close on, so both ends see it


@contextmanager
def connect_proxy(
    upstream_port: int,
    *,
    refuse: int | None = None,
    silent: bool = False,
    hold: threading.Event | None = None,
) -> Iterator[RawServer]:
    with raw_server(tunnel_to(upstream_port, refuse=refuse, silent=silent, hold=hold)) as proxy:
        yield proxy
