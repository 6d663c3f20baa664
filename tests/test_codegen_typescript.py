"""The generated TypeScript: tsc --strict, type tests, and Node tests against a real server."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mangum_ws.codegen import write
from tests import codegen_zoo
from tests.support.server import serve

CLIENTS = Path(__file__).parent.parent / "clients"
TSC = CLIENTS / "node_modules" / ".bin" / "tsc"
TS_FLAGS = [
    "--ignoreConfig",
    "--strict",
    "--target",
    "es2022",
    "--module",
    "es2022",
    "--moduleResolution",
    "bundler",
    "--lib",
    "es2022,dom",
    "--types",
    "",
]


def require_node_tools() -> None:
    missing = [
        what
        for what, ok in (
            ("node", shutil.which("node")),
            ("tsc", TSC.exists()),
            ("ws", (CLIENTS / "node_modules" / "ws").exists()),
        )
        if not ok
    ]
    if missing:
        message = f"missing {', '.join(missing)}: install Node.js, then `cd clients && npm install`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def run(
    command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env=env, cwd=cwd
    )


@pytest.fixture(scope="module")
def zoo_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_node_tools()
    out = tmp_path_factory.mktemp("zoo")
    write(codegen_zoo.ws, out, "tests.codegen_zoo:ws")
    return out


def test_generated_client_compiles_under_strict(zoo_client: Path) -> None:
    result = run([str(TSC), *TS_FLAGS, "--noEmit", str(zoo_client / "client.ts")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_type_tests_accept_right_and_refuse_wrong_payloads(zoo_client: Path) -> None:
    shutil.copy(CLIENTS / "test" / "types.test.ts", zoo_client / "types.test.ts")
    result = run([str(TSC), *TS_FLAGS, "--noEmit", str(zoo_client / "types.test.ts")])
    assert result.returncode == 0, result.stdout + result.stderr
    # The @ts-expect-error lines are load-bearing: without them the same file must fail.
    stripped = (zoo_client / "types.test.ts").read_text().replace("// @ts-expect-error", "//")
    (zoo_client / "types_stripped.test.ts").write_text(stripped)
    refused = run([str(TSC), *TS_FLAGS, "--noEmit", str(zoo_client / "types_stripped.test.ts")])
    assert refused.returncode != 0
    assert refused.stdout.count("error TS") >= 17, refused.stdout


def compile_client(out: Path) -> Path:
    """tsc --strict of ``out``/client.ts into ``out``/js; returns the client.js path."""
    result = run(
        [
            str(TSC),
            *TS_FLAGS,
            "--rootDir",
            str(out),
            "--outDir",
            str(out / "js"),
            str(out / "client.ts"),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "js" / "client.js"


@pytest.fixture(scope="module")
def compiled_client(zoo_client: Path) -> Path:
    return compile_client(zoo_client)


@pytest.fixture(scope="module")
def zoo_server() -> Iterator[str]:
    with serve(codegen_zoo.app()) as address:
        yield f"ws://{address}/"


def test_node_client_against_a_real_server(compiled_client: Path, zoo_server: str) -> None:
    env = {**os.environ, "CLIENT_JS": compiled_client.as_uri(), "WS_URL": zoo_server}
    result = run(
        ["node", "--test", "--test-reporter=tap", str(CLIENTS / "test" / "client.test.mjs")],
        env=env,
        cwd=CLIENTS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout, result.stdout
    assert "# pass 26" in result.stdout, result.stdout


def test_checked_in_demo_client_is_compiled_from_its_source(tmp_path: Path) -> None:
    require_node_tools()
    demo = CLIENTS / "demochat"
    result = run(
        [
            str(TSC),
            *TS_FLAGS,
            "--rootDir",
            str(demo),
            "--outDir",
            str(tmp_path),
            str(demo / "client.ts"),
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "client.js").read_text() == (demo / "client.js").read_text(), (
        "clients/demochat/client.js is stale: run `cd clients && npm run build:demochat`"
    )
