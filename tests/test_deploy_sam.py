"""The SAM template written from the registry, checked by cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mangum_ws import MangumWS
from mangum_ws.deploy import sam_template
from tests.support.processes import run

ROOT = Path(__file__).parent.parent


class In(BaseModel):
    text: str


def registry_app(route_responses: bool) -> MangumWS:
    ws = MangumWS(route_responses=route_responses)
    ws.action("chat.send", input=In)(lambda data: None)
    ws.action("legacy", route="sendmessage", input=In)(lambda data: None)
    ws.action("ping", route="ping")(lambda: None)
    return ws


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    # cfn-lint's console script, beside this interpreter (the package has no __main__).
    cfn_lint_bin = Path(sys.executable).with_name("cfn-lint")
    return subprocess.run(
        [str(cfn_lint_bin), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def resources_of(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


@pytest.mark.parametrize("route_responses", [False, True])
def test_template_passes_cfn_lint(tmp_path: Path, route_responses: bool) -> None:
    template = sam_template(registry_app(route_responses), handler="app.handler")
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(template, indent=2))
    result = cfn_lint(path)
    assert result.returncode == 0, result.stdout + result.stderr

    api = template["Resources"]["WebSocketApi"]["Properties"]
    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body.action"
    routes = resources_of(template, "AWS::ApiGatewayV2::Route")
    assert sorted(r["Properties"]["RouteKey"] for r in routes.values()) == [
        "$connect",
        "$default",
        "$disconnect",
        "ping",
        "sendmessage",
    ]
    responses = resources_of(template, "AWS::ApiGatewayV2::RouteResponse")
    two_way = sorted(
        routes[r["Properties"]["RouteId"]["Ref"]]["Properties"]["RouteKey"]
        for r in responses.values()
    )
    assert two_way == (["$default", "ping", "sendmessage"] if route_responses else [])

    table = template["Resources"]["ConnectionsTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    policies = template["Resources"]["WebSocketFunction"]["Properties"]["Policies"]
    statement = policies[1]["Statement"][0]
    assert statement["Action"] == "execute-api:ManageConnections"
    assert "${WebSocketApi}/${StageName}/*" in statement["Resource"]["Fn::Sub"]


def deploy(*args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "mangum_ws.deploy", *args])


def test_cli_writes_the_demo_template_and_says_what_next(tmp_path: Path) -> None:
    out = tmp_path / "template.yaml"
    result = deploy("demochat:ws", "--app-dir", "examples", "--sam", str(out))
    assert result.returncode == 0, result.stderr
    template = json.loads(out.read_text())
    function = template["Resources"]["WebSocketFunction"]["Properties"]
    # CodeUri is relative to the template: it must be the directory the app was imported from.
    assert (tmp_path / function["CodeUri"]).resolve() == ROOT / "examples"
    assert function["Handler"] == "demochat.handler"
    assert cfn_lint(out).returncode == 0

    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"wrote {out}: WebSocket API with routes $connect, $disconnect, $default "
        "-> one Lambda function"
    )
    assert (
        f"Handler demochat.handler, CodeUri {function['CodeUri']}, Runtime python3.12" in lines[1]
    )
    assert lines[2] == "next:"
    # examples/ has no requirements.txt: the next steps say what to put there.
    assert any(line.endswith("> examples/requirements.txt") for line in lines)
    assert f"  sam validate --lint --template {out}" in lines
    assert any(line.startswith(f"  sam build --template {out}") for line in lines)
    assert lines[-1] == "  sam deploy --guided"


def test_the_template_beside_the_app_has_code_uri_dot(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("mangum-ws[aws]\n")
    (tmp_path / "chat.py").write_text(
        "from fastapi import FastAPI\nfrom mangum import Mangum\nfrom mangum_ws import MangumWS\n"
        "app = FastAPI()\nws = MangumWS()\n"
        "lambda_handler = Mangum(app, custom_handlers=[ws.handler])\n"
    )
    result = deploy("chat:ws", "--app-dir", str(tmp_path), "--sam", str(tmp_path / "t.yaml"))
    assert result.returncode == 0, result.stderr
    function = json.loads((tmp_path / "t.yaml").read_text())["Resources"]["WebSocketFunction"]
    assert function["Properties"]["CodeUri"] == "."
    assert function["Properties"]["Handler"] == "chat.lambda_handler"  # found, whatever its name
    assert "requirements.txt" not in result.stdout  # there already


def test_an_app_without_a_mangum_handler_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bare.py").write_text("from mangum_ws import MangumWS\nws = MangumWS()\n")
    result = deploy("bare:ws", "--app-dir", str(tmp_path), "--sam", str(tmp_path / "t.yaml"))
    assert result.returncode == 2
    assert result.stderr == (
        "error: bare has no Mangum handler for bare:ws: add "
        "handler = Mangum(app, custom_handlers=[ws.handler]) or pass --handler\n"
    )


@pytest.mark.parametrize("where", ["missing/t.yaml", "."])
def test_an_unwritable_sam_path_is_one_line_and_exit_2(tmp_path: Path, where: str) -> None:
    result = deploy("demochat:ws", "--app-dir", "examples", "--sam", str(tmp_path / where))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot write --sam {tmp_path / where}: ")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nowhere:ws", "module 'nowhere' not found"),
        ("demochat:nope", "has no attribute 'nope'"),
        ("demochat:app", "is a FastAPI, not a MangumWS"),
        ("demochat", "expected MODULE:ATTRIBUTE"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(tmp_path: Path, target: str, message: str) -> None:
    result = deploy(target, "--app-dir", "examples", "--sam", str(tmp_path / "t.yaml"))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
