from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator

import pytest

from tests.support.management_api import ManagementApi, management_api


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every @connections request is SigV4-signed; no real credentials are ever needed or read.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def mgmt_api() -> Iterator[ManagementApi]:
    with management_api() as api:
        yield api


@pytest.fixture(autouse=True)
def _close_mangums_event_loop() -> Iterator[None]:
    """Mangum installs an event loop of its own and never closes it (on Lambda it lives as long
    as the process); between tests that would leak as an unclosed-loop ResourceWarning."""
    yield
    policy = asyncio.get_event_loop_policy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loop = policy.get_event_loop()
    except RuntimeError:
        return
    if not loop.is_running() and not loop.is_closed():
        loop.close()
    policy.set_event_loop(None)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's server on a free 127.0.0.1 port, over real HTTP, for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
