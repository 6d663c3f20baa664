"""A stand-in for API Gateway's @connections management API, on 127.0.0.1 over real HTTP.

moto's version never answers 410 and accepts every id, so Gone, throttling and failures are
tested here. Errors carry ``x-amzn-ErrorType`` so botocore raises the exception AWS would.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from tests.support.server import in_thread

# The absolute form (``POST http://host/stage/@connections/id``) is what a client sends to an
# HTTP proxy: accepting it lets the stand-in play the proxy too (tests of HTTP_PROXY).
_PATH = re.compile(r"^(?:https?://[^/]+)?(?:/[^/@]+)?/@connections/(?P<id>[^/?]+)$")

ERROR_TYPES = {
    403: "ForbiddenException",
    410: "GoneException",
    413: "PayloadTooLargeException",
    429: "LimitExceededException",
    500: "InternalServerErrorException",
}


@dataclass(frozen=True)
class Request:
    """One request as it arrived: method, raw path (still percent-encoded), headers, body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    delay: float = 0.0


Responder = Callable[[str, int], Answer]
"""(connection_id, attempt number for that id starting at 1) -> what to answer."""


def live(ids: set[str]) -> Responder:
    """200 for the ids in ``ids`` (read at each call), 410 for any other."""
    return lambda cid, attempt: Answer(200 if cid in ids else 410)


@dataclass
class ManagementApi:
    url: str
    posts: list[tuple[str, bytes]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    responder: Responder = field(default=lambda cid, attempt: Answer(200))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, connection_id: str) -> list[object]:
        with self.lock:
            return [json.loads(d) for cid, d in self.posts if cid == connection_id]


@contextmanager
def management_api(tls: ssl.SSLContext | None = None) -> Iterator[ManagementApi]:
    """Serve on a free port; over HTTPS with ``tls`` (a server-side context), as AWS does."""
    api = ManagementApi(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway does

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            if status >= 400:
                error = ERROR_TYPES.get(status, "InternalServerErrorException")
                self.send_header("x-amzn-ErrorType", error)
                body = json.dumps({"message": error}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _record(self, body: bytes) -> None:
            with api.lock:
                api.requests.append(Request(self.command, self.path, dict(self.headers), body))

        def _connection_id(self) -> str | None:
            match = _PATH.match(self.path)
            return unquote(match.group("id")) if match else None

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._record(data)
            cid = self._connection_id()
            if cid is None:
                self._answer(404)
                return
            with api.lock:
                attempt = api.attempts[cid] = api.attempts.get(cid, 0) + 1
            answer = api.responder(cid, attempt)
            if answer.delay:
                time.sleep(answer.delay)
            if answer.status == 200:
                with api.lock:
                    api.posts.append((cid, data))
            self._answer(answer.status)

        def do_DELETE(self) -> None:
            self._record(b"")
            cid = self._connection_id()
            if cid is None:
                self._answer(404)
                return
            with api.lock:
                api.deletes.append(cid)
            self._answer(204)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    port = server.server_address[1]
    api.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    with in_thread(server):
        yield api
