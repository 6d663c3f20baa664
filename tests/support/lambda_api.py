"""A stand-in for Lambda's Invoke API on 127.0.0.1 over real HTTP: it records what boto3 sends
(``POST /2015-03-31/functions/{name}/invocations``) and answers as Lambda does, 202 for an
asynchronous invocation, so a test can play the Lambda service and run the payload itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from tests.support.server import in_thread


@dataclass(frozen=True)
class Invocation:
    function: str
    invocation_type: str
    payload: Any


@dataclass
class LambdaApi:
    url: str
    invocations: list[Invocation] = field(default_factory=list)
    # Anything but 202: answered as Lambda answers a caller without the permission.
    status: int = 202

    def payloads(self) -> list[Any]:
        return [invocation.payload for invocation in self.invocations]


@contextmanager
def lambda_api() -> Iterator[LambdaApi]:
    api = LambdaApi(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            function = unquote(self.path.split("/functions/", 1)[-1].rsplit("/", 1)[0])
            kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            api.invocations.append(Invocation(function, kind, json.loads(body)))
            answer = b""
            self.send_response(api.status)
            if api.status >= 400:
                self.send_header("x-amzn-ErrorType", "AccessDeniedException")
                answer = b'{"message": "not authorized to perform: lambda:InvokeFunction"}'
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    with in_thread(server):
        yield api
