"""python -m mangum_ws.codegen: writes, checks for drift, and refuses bad input in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import run

ROOT = Path(__file__).parent.parent


def codegen(*args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "mangum_ws.codegen", *args], timeout=120)


def test_write_then_check(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    first = codegen("tests.codegen_zoo:ws", "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in out.iterdir()) == ["asyncapi.json", "client.ts", "schema.json"]
    assert codegen("tests.codegen_zoo:ws", "--out", str(out), "--check").returncode == 0
    again = codegen("tests.codegen_zoo:ws", "--out", str(out))
    assert again.stdout == ""  # nothing changed, nothing rewritten

    (out / "client.ts").write_text("// edited by hand\n")
    before = (out / "schema.json").read_bytes()
    stale = codegen("tests.codegen_zoo:ws", "--out", str(out), "--check")
    assert stale.returncode == 1
    assert stale.stdout.splitlines() == [
        f"stale: {out / 'client.ts'}",
        f"refresh with: python -m mangum_ws.codegen tests.codegen_zoo:ws --out {out}",
    ]
    assert (out / "client.ts").read_text() == "// edited by hand\n"  # --check writes nothing
    assert (out / "schema.json").read_bytes() == before


def test_check_on_a_missing_directory_names_both_files(tmp_path: Path) -> None:
    result = codegen("tests.codegen_zoo:ws", "--out", str(tmp_path / "none"), "--check")
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 4  # three files, then the refresh command
    assert not (tmp_path / "none").exists()


def test_app_dir_like_uvicorn(tmp_path: Path) -> None:
    result = codegen("demochat:ws", "--app-dir", "examples", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr


def test_servers_and_query_reach_asyncapi_and_a_bad_server_is_exit_2(tmp_path: Path) -> None:
    server = "prod=wss://abc.execute-api.eu-west-1.amazonaws.com/prod"
    args = ["tests.codegen_zoo:ws", "--out", str(tmp_path), "--server", server, "--query", "token"]
    assert codegen(*args).returncode == 0
    document = json.loads((tmp_path / "asyncapi.json").read_text())
    assert document["servers"] == {
        "prod": {
            "host": "abc.execute-api.eu-west-1.amazonaws.com",
            "protocol": "wss",
            "pathname": "/prod",
        }
    }
    query = document["channels"]["socket"]["bindings"]["ws"]["query"]
    assert query == {"type": "object", "properties": {"token": {"type": "string"}}}
    assert codegen(*args, "--check").returncode == 0
    stale = codegen("tests.codegen_zoo:ws", "--out", str(tmp_path), "--check")
    assert stale.stdout.splitlines()[0] == f"stale: {tmp_path / 'asyncapi.json'}"
    bad = codegen("tests.codegen_zoo:ws", "--out", str(tmp_path), "--server", "prod=https://x")
    assert bad.returncode == 2
    assert (
        bad.stderr
        == "error: --server 'prod=https://x': server 'https://x' is not a ws:// or wss:// URL\n"
    )


def test_the_checked_in_demo_client_is_fresh() -> None:
    result = codegen(
        "demochat:ws", "--app-dir", "examples", "--out", "clients/demochat", "--python", "--check"
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_such_module:ws", "module 'no_such_module' not found"),
        ("tests.codegen_zoo:nope", "has no attribute 'nope'"),
        ("tests.codegen_bad:not_a_ws", "is a str, not a MangumWS"),
        ("tests.codegen_bad:ws", "cannot express a model"),
        ("tests.codegen_zoo", "expected MODULE:ATTRIBUTE"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, target: str, message: str) -> None:
    result = codegen(target, "--out", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_usable_as_a_function(tmp_path: Path) -> None:
    from mangum_ws.codegen import generate, stale_files, write
    from tests import codegen_zoo

    files = [tmp_path / "schema.json", tmp_path / "asyncapi.json", tmp_path / "client.ts"]
    assert stale_files(codegen_zoo.ws, tmp_path) == files
    assert write(codegen_zoo.ws, tmp_path) == files
    assert stale_files(codegen_zoo.ws, tmp_path) == []
    assert generate(codegen_zoo.ws)["client.ts"] == (tmp_path / "client.ts").read_text()


def test_an_out_that_is_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    for out, check in ((tmp_path / "file", False), (tmp_path / "file", True)):
        args = ["--check"] if check else []
        result = codegen("tests.codegen_zoo:ws", "--out", str(out), *args)
        assert result.returncode == 2, result.stderr  # never 1: that is "stale"
        assert result.stderr == f"error: --out {out} is not a directory\n"


def test_an_unwritable_out_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "gen"
    result = codegen("tests.codegen_zoo:ws", "--out", str(out))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot write to --out {out}: ")


def test_the_users_import_error_keeps_its_traceback_and_is_not_stale(tmp_path: Path) -> None:
    (tmp_path / "broken_app.py").write_text("raise ImportError('no such thing here')\n")
    result = codegen("broken_app:ws", "--app-dir", str(tmp_path), "--out", str(tmp_path), "--check")
    assert result.returncode == 2
    assert 'broken_app.py", line 1' in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: importing 'broken_app' raised ImportError (traceback above)"
    )
