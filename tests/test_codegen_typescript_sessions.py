"""The generated TypeScript client's sessions in Node against the real feed app, on ws.mount and
the local API Gateway: a topic event held ahead of a gap waits through a drop and a slow resume
for the replay (clients/test/sessions.test.mjs), as the Python client's does."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mangum_ws.codegen import write
from tests.support import sessions_app
from tests.test_codegen_python_sessions import PATHS
from tests.test_codegen_typescript import CLIENTS, compile_client, require_node_tools, run
from tests.test_sessions import served


@pytest.fixture(scope="module")
def feed_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_node_tools()
    out = tmp_path_factory.mktemp("feed_ts")
    write(sessions_app.ws, out, "tests.support.sessions_app:ws")
    return compile_client(out)


@pytest.mark.parametrize("path", PATHS)
def test_node_client_sessions_against_the_real_server(path: str, feed_js: Path) -> None:
    with served(path) as (url, _ws):
        result = run(
            ["node", "--test", "--test-reporter=tap", str(CLIENTS / "test" / "sessions.test.mjs")],
            env={**os.environ, "CLIENT_JS": feed_js.as_uri(), "WS_URL": url},
            cwd=CLIENTS,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout, result.stdout
    assert "# pass 2" in result.stdout, result.stdout
