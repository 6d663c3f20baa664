"""The local API Gateway's Lambda Invoke API answers only signed requests, as Lambda does.

Unsigned, any web page the developer opens could invoke the function: a cross-origin POST with
a text/plain body needs no CORS preflight, and the emulator parses the body whatever its type.
Such a page would run the app's actions with its input, as a connection it makes up, on the
developer's machine and credentials. boto3 always signs; a browser cannot send an
Authorization header cross-origin without a preflight."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

from mangum_ws.local import LocalApiGateway
from tests.support.events import connect_event


def test_an_unsigned_invocation_is_refused_and_runs_nothing() -> None:
    invoked: list[dict[str, Any]] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            invoked.append(event)
        return {"statusCode": 200}

    with LocalApiGateway(handler) as gateway:
        request = urllib.request.Request(
            f"{gateway.url}/2015-03-31/functions/mangum-ws-local/invocations",
            data=json.dumps(connect_event()).encode(),
            headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        info.value.close()
    assert info.value.code == 403
    assert invoked == []
