"""``python -m mangum_ws.deploy MODULE:ATTR --sam template.yaml``: an AWS SAM template.

The template is written as JSON, which is YAML too and which CloudFormation reads as is. Its
function's CodeUri is --app-dir (relative to the template) and its Handler the module's Mangum
handler, so `sam build` packages the directory the app was imported from. Exit 2: bad usage,
target or output path, in one line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from .. import __version__
from ..app import MangumWS
from ..cli import Parser, fail, load_target
from ..loading import mangum_handlers
from .template import sam_template


def main(argv: list[str] | None = None) -> int:
    parser = Parser("python -m mangum_ws.deploy", __doc__)
    parser.add_argument("target", help="the MangumWS object, as MODULE:ATTR (e.g. app:ws)")
    parser.add_argument("--sam", required=True, metavar="FILE", help="where to write the template")
    parser.add_argument(
        "--handler",
        default=None,
        metavar="MODULE.ATTR",
        help="the Lambda handler; default: the module's Mangum handler, e.g. MODULE.handler",
    )
    parser.add_argument(
        "--code-uri",
        default=None,
        metavar="DIR",
        help="the function's code, relative to the template; default: --app-dir",
    )
    parser.add_argument("--runtime", default="python3.12", help="the Lambda runtime")
    parser.add_argument(
        "--fanout-queue",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the SQS queue that big publishes go through, its dead-letter queue and the "
        "event source (default: when the MangumWS has a fanout_queue)",
    )
    parser.add_argument(
        "--app-dir", default=".", metavar="DIR", help="put on sys.path first (as uvicorn)"
    )
    args = parser.parse_args(argv)

    template_dir = os.path.dirname(os.path.abspath(args.sam))
    if not os.path.isdir(template_dir):
        fail(f"cannot write --sam {args.sam}: directory {template_dir} does not exist")
    if os.path.isdir(args.sam):
        fail(f"cannot write --sam {args.sam}: it is a directory")
    ws = load_target(args.target, args.app_dir)
    if not isinstance(ws, MangumWS):
        fail(f"{args.target!r} is a {type(ws).__name__}, not a MangumWS")
    module_name = args.target.partition(":")[0]
    handler = args.handler
    if handler is None:
        names = mangum_handlers(module_name, ws)
        if not names:
            fail(
                f"{module_name} has no Mangum handler for {args.target}: add "
                "handler = Mangum(app, custom_handlers=[ws.handler]) or pass --handler"
            )
        handler = f"{module_name}.{names[0]}"
    code_uri = args.code_uri or os.path.relpath(os.path.abspath(args.app_dir), template_dir)
    code_uri = code_uri.replace(os.sep, "/")
    template = sam_template(
        ws,
        handler=handler,
        code_uri=code_uri,
        runtime=args.runtime,
        fanout_queue=args.fanout_queue,
    )
    try:
        with open(args.sam, "w", encoding="utf-8") as out:
            json.dump(template, out, indent=2)
            out.write("\n")
    except OSError as exc:
        fail(f"cannot write --sam {args.sam}: {exc.strerror or exc}")
    print(summary(args.sam, template, os.path.join(template_dir, code_uri)))
    return 0


def summary(path: str, template: dict[str, object], code_dir: str) -> str:
    """What was written, and the commands that take it to AWS."""
    resources = template["Resources"]
    assert isinstance(resources, dict)
    function = resources["WebSocketFunction"]["Properties"]
    routes = [
        r["Properties"]["RouteKey"] for r in resources.values() if r["Type"].endswith("::Route")
    ]
    sam = shlex.quote(path)
    lines = [
        f"wrote {path}: WebSocket API with routes {', '.join(routes)} -> one Lambda function",
        f"  Handler {function['Handler']}, CodeUri {function['CodeUri']}, "
        f"Runtime {function['Runtime']}, a DynamoDB table for connections and topics",
        "next:",
    ]
    requirements = os.path.join(os.path.relpath(code_dir), "requirements.txt")
    if not os.path.isfile(requirements):
        lines += [
            f"  # sam build installs the function's packages from {requirements}, missing:",
            f"  # list mangum-ws {__version__} there (PyPI's mangum-ws is the 0.1 original),",
            "  # e.g. the wheel `uv build` makes in a checkout:",
            f'  echo "mangum-ws[aws] @ file://$PWD/dist/mangum_ws-{__version__}-py3-none-any.whl"'
            f" > {shlex.quote(requirements)}",
        ]
    runtime = str(function["Runtime"])
    lines += [
        f"  sam validate --lint --template {sam}",
        f"  sam build --template {sam}        # needs {runtime} on PATH",
        "  sam deploy --guided",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
