"""The internal route is invisible: an ordinary HTTP request anywhere under /internal/websocket
gets exactly what the app answers for a path that does not exist, whatever the method."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from mangum import Mangum
from starlette.requests import Request

from mangum_ws import MangumWS
from tests.support.events import FakeLambdaContext, http_api_event
from tests.support.server import serve

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
PATHS = [
    "/internal/websocket",
    "/internal/websocket/",
    "/internal/websocket/sendmessage",
    "/internal/websocket/sendmessage/",
    "/internal/websocket/connect/L0SM9cOFvHcCIhw=",
    "/internal/websocket/disconnect/L0SM9cOFvHcCIhw=",
    "/internal/websocket/sendmessage/L0SM9cOFvHcCIhw=",
    "/internal/websocket/sendmessage/a/b/c",
    "/internal/websocket/other",
]
MISSING = "/no/such/path/at/all"


def app_with(ws: MangumWS, custom_404: bool) -> FastAPI:
    app = FastAPI()

    @ws.on_message
    async def spoofed(connection_id: str, data: dict[str, Any]) -> None:
        raise AssertionError("an HTTP request reached a handler")

    if custom_404:

        @app.exception_handler(404)
        async def not_found(request: Request, exc: Exception) -> PlainTextResponse:
            return PlainTextResponse(f"nothing at {request.url.path}", status_code=404)

    app.include_router(ws.router)
    ws.mount(app)
    return app


def answer(response: httpx.Response, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [
        (k, v) for k, v in response.headers.multi_items() if k not in ("date", "content-length")
    ]
    return response.status_code, headers, response.content.replace(path.encode(), b"<path>")


@pytest.mark.parametrize("custom_404", [False, True], ids=["default-404", "custom-404"])
def test_http_requests_cannot_tell_the_internal_route_from_a_missing_one(custom_404: bool) -> None:
    app = app_with(MangumWS(), custom_404)
    with serve(app) as address, httpx.Client(base_url=f"http://{address}") as client:
        for method in METHODS:
            expected = answer(client.request(method, MISSING, content=b"{}"), MISSING)
            assert expected[0] in (404, 405)
            for path in PATHS:
                got = answer(client.request(method, path, content=b"{}"), path)
                assert got == expected, (method, path)


def test_http_events_on_lambda_get_the_missing_path_answer() -> None:
    ws = MangumWS(route_responses=True)
    handler = Mangum(app_with(ws, custom_404=False), custom_handlers=[ws.handler])
    ctx = FakeLambdaContext()
    for method in METHODS:
        expected = handler(http_api_event(MISSING, method=method), ctx)
        for path in PATHS:
            assert handler(http_api_event(path, method=method), ctx) == expected, (method, path)
