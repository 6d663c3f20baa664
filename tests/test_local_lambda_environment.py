"""The emulator gives the handler what Lambda's runtime gives a function, without replacing
anything this machine already configures (it runs in the emulator's own process)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mangum_ws.local.lambda_runtime import (
    PLACEHOLDER_CREDENTIALS,
    LambdaContext,
    has_credentials,
    lambda_environment,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine that has never seen AWS: no AWS_* variable, an empty HOME."""
    import os

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def metadata_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A stand-in EC2 instance metadata service on 127.0.0.1 that records what it is asked."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            asked.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_PUT

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT", f"http://127.0.0.1:{server.server_port}"
    )
    try:
        yield asked
    finally:
        server.shutdown()
        server.server_close()


def test_a_bare_machine_gets_a_region_placeholder_credentials_and_lambdas_variables(
    home: Path,
) -> None:
    env = lambda_environment("demochat.handler", "examples")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "mangum-ws-local"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/mangum-ws-local"
    assert env["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert env["_HANDLER"] == "demochat.handler"
    assert env["LAMBDA_TASK_ROOT"] == str(Path("examples").resolve())
    for name, value in PLACEHOLDER_CREDENTIALS.items():
        assert env[name] == value
    assert "AWS_ENDPOINT_URL_LAMBDA" not in env  # only given the emulator's own endpoint


def test_background_actions_reach_the_emulators_invoke_api_with_a_key_of_their_own(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = lambda_environment("demochat.handler", "examples", lambda_endpoint="http://127.0.0.1:9")
    assert env["AWS_ENDPOINT_URL_LAMBDA"] == "http://127.0.0.1:9"
    key = env["MANGUM_WS_BACKGROUND_KEY"]
    assert len(key) >= 32
    assert lambda_environment("m.h", ".")["MANGUM_WS_BACKGROUND_KEY"] != key  # fresh each run
    # As for every other variable, what this machine sets stays.
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://elsewhere")
    monkeypatch.setenv("MANGUM_WS_BACKGROUND_KEY", "mine")
    env = lambda_environment("m.h", ".", lambda_endpoint="http://127.0.0.1:9")
    assert "AWS_ENDPOINT_URL_LAMBDA" not in env
    assert "MANGUM_WS_BACKGROUND_KEY" not in env


def test_the_instance_metadata_service_is_never_asked(
    home: Path, metadata_service: list[str]
) -> None:
    assert not has_credentials()
    assert metadata_service == []


def test_a_profile_in_home_is_kept_with_its_region(home: Path) -> None:
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAREALKEY\naws_secret_access_key = secret\n"
    )
    (home / ".aws" / "config").write_text("[default]\nregion = eu-west-3\n")
    env = lambda_environment("app.handler", ".")
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-3"
    assert not env.keys() & PLACEHOLDER_CREDENTIALS.keys()


def test_variables_already_set_are_never_replaced(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAMINE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "mine")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "chat")
    env = lambda_environment("app.handler", ".")
    assert env["AWS_DEFAULT_REGION"] == "ap-south-1"
    assert not env.keys() & {"AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME", *PLACEHOLDER_CREDENTIALS}


def test_a_named_profile_is_the_users_even_when_broken(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    assert has_credentials()


def test_the_context_arn_names_the_region(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    context = LambdaContext()
    assert context.invoked_function_arn == (
        "arn:aws:lambda:eu-central-1:123456789012:function:mangum-ws-local"
    )
