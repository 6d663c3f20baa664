"""The demo's template goes through AWS SAM CLI and the function it builds runs.

``python -m mangum_ws.deploy`` writes the template, ``sam validate --lint`` and ``sam build``
(no container: a local interpreter of the template's runtime installs the packages) run on it,
then the built function is imported in a fresh interpreter that sees nothing but the build
directory and the standard library (``-I -S``), and answers a CONNECT and a MESSAGE event,
its reply posted to a Management API stand-in. No AWS credentials, no Docker, no network but
PyPI (for the function's packages and, the first time, SAM CLI itself: scripts/sam).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.demo_auth import context, token
from tests.support.events import authorizer_event, connect_event, message_event
from tests.support.management_api import ManagementApi

ROOT = Path(__file__).parent.parent
TEMPLATE_RUNTIME = "python3.12"  # mangum_ws.deploy's default

pytestmark = pytest.mark.timeout(900)


def works(python: str) -> bool:
    """The interpreter runs and has pip (sam build installs the requirements with it)."""
    result = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)
    return result.returncode == 0


def runtime_python() -> tuple[str, str]:
    """(runtime, interpreter): the template's default runtime when this machine has that
    Python (on PATH, or installed by pyenv without being global), else the runtime of the
    Python running the tests."""
    version = TEMPLATE_RUNTIME.removeprefix("python")
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = [
        shutil.which(f"python{version}"),
        *sorted(glob.glob(f"{pyenv}/versions/{version}.*/bin/python{version}"), reverse=True),
    ]
    for python in candidates:
        if python and works(python):
            return TEMPLATE_RUNTIME, python
    base = getattr(sys, "_base_executable", sys.executable)
    assert works(base), f"no Python with pip for sam build: neither python{version} nor {base}"
    return f"python{sys.version_info.major}.{sys.version_info.minor}", base


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def no_aws_env(tmp_path: Path, bin_dir: Path) -> dict[str, str]:
    """This environment with no AWS configuration but a region, and ``bin_dir`` first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return {
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "SAM_CLI_TELEMETRY": "0",
    }


INVOKE = """
import json, os, sys
sys.path.insert(0, os.getcwd())
import demochat, mangum_ws
assert mangum_ws.__file__.startswith(os.getcwd()), mangum_ws.__file__
context = type("Context", (), {"aws_request_id": "r-1", "function_name": "chat"})()
answers = [demochat.handler(event, context) for event in json.load(sys.stdin)]
print(json.dumps({"version": mangum_ws.__version__, "answers": answers}))
"""


def test_sam_validates_and_builds_the_demo_and_the_built_function_answers(
    tmp_path: Path, mgmt_api: ManagementApi
) -> None:
    if shutil.which("uv") is None:
        pytest.fail("uv is not on PATH: scripts/sam runs SAM CLI through it")
    runtime, python = runtime_python()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / runtime).symlink_to(python)  # where sam build looks for the runtime's Python
    env = no_aws_env(tmp_path, bin_dir)

    run(["uv", "build", "--wheel", "--quiet", "--out-dir", str(tmp_path / "dist")], ROOT, env)
    [wheel] = (tmp_path / "dist").glob("mangum_ws-*.whl")
    app = tmp_path / "app"
    app.mkdir()
    for name in ("demochat.py", "demochat.html"):
        shutil.copy(ROOT / "examples" / name, app / name)
    (app / "requirements.txt").write_text(f"mangum-ws[aws,demo] @ {wheel.as_uri()}\n")

    deploy = [sys.executable, "-m", "mangum_ws.deploy", "demochat:ws", "--app-dir", "app"]
    run([*deploy, "--sam", "template.yaml", "--runtime", runtime], tmp_path, env)
    resources = json.loads((tmp_path / "template.yaml").read_text())["Resources"]
    function = resources["WebSocketFunction"]["Properties"]
    assert (function["CodeUri"], function["Handler"]) == ("app", "demochat.handler")
    # The demo's @ws.authorizer: a REQUEST authorizer on $connect, validated by SAM CLI below.
    authorizer = resources["ConnectAuthorizer"]["Properties"]
    assert authorizer["IdentitySource"] == ["route.request.querystring.token"]

    sam = str(ROOT / "scripts" / "sam")
    run([sam, "validate", "--lint", "--template", "template.yaml"], tmp_path, env)
    run([sam, "build", "--template", "template.yaml", "--build-dir", "build"], tmp_path, env)
    built = tmp_path / "build" / "WebSocketFunction"
    assert (built / "demochat.py").is_file()

    signed_in = context("ann")
    events = [
        authorizer_event("conn-1", query={"token": token("ann")}),
        connect_event("conn-1", authorizer=signed_in),
        message_event(
            {"action": "chat.join", "id": "j1", "data": {"room": "r"}},
            "conn-1",
            authorizer=signed_in,
        ),
    ]
    lambda_env = {
        "PATH": env["PATH"],
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "ASIAFROMTHEROLE",  # Lambda's runtime always sets the role's
        "AWS_SECRET_ACCESS_KEY": "role-secret",
        "AWS_SESSION_TOKEN": "role-token",
        "APIGW_MANAGEMENT_URL": mgmt_api.url,  # what the template sets, pointed at the stand-in
    }
    result = subprocess.run(
        [python, "-I", "-S", "-c", INVOKE],
        cwd=built,
        env=lambda_env,
        input=json.dumps(events),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    assert output["version"] == "0.3.1"
    policy, connect_answer, message_answer = output["answers"]
    assert (policy["principalId"], policy["context"]) == ("ann", {"role": "member"})
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert connect_answer["statusCode"] == 200
    assert message_answer["statusCode"] == 200
    [reply] = mgmt_api.received("conn-1")
    assert reply == {
        "type": "result",
        "id": "j1",
        "action": "chat.join",
        "data": {"room": "r", "members": ["ann"]},
    }


def test_sam_validates_the_template_with_a_fanout_queue(tmp_path: Path) -> None:
    if shutil.which("uv") is None:
        pytest.fail("uv is not on PATH: scripts/sam runs SAM CLI through it")
    env = no_aws_env(tmp_path, tmp_path)
    deploy = [sys.executable, "-m", "mangum_ws.deploy", "demochat:ws"]
    app_dir = str(ROOT / "examples")
    run([*deploy, "--app-dir", app_dir, "--sam", "template.yaml", "--fanout-queue"], tmp_path, env)
    resources = json.loads((tmp_path / "template.yaml").read_text())["Resources"]
    assert resources["FanoutQueue"]["Type"] == "AWS::SQS::Queue"
    sam = str(ROOT / "scripts" / "sam")
    run([sam, "validate", "--lint", "--template", "template.yaml"], tmp_path, env)
