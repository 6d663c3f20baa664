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


def test_cli_writes_the_demo_template(tmp_path: Path) -> None:
    out = tmp_path / "template.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mangum_ws.deploy",
            "demochat:ws",
            "--app-dir",
            "examples",
            "--sam",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    template = json.loads(out.read_text())
    function = template["Resources"]["WebSocketFunction"]["Properties"]
    assert function["Handler"] == "demochat.handler"
    assert cfn_lint(out).returncode == 0


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
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mangum_ws.deploy",
            target,
            "--app-dir",
            "examples",
            "--sam",
            str(tmp_path / "t.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
