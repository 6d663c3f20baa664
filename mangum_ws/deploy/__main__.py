"""``python -m mangum_ws.deploy MODULE:ATTR --sam template.yaml``: an AWS SAM template.

The template is written as JSON, which is YAML too and which CloudFormation reads as is.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..app import MangumWS
from ..loading import LoadError, load_attribute
from .template import sam_template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mangum_ws.deploy", description=__doc__)
    parser.add_argument("target", help="the MangumWS object, as MODULE:ATTR (e.g. app:ws)")
    parser.add_argument("--sam", required=True, metavar="FILE", help="where to write it")
    parser.add_argument(
        "--handler", default=None, help="the Lambda handler (default: MODULE.handler)"
    )
    parser.add_argument("--code-uri", default=".")
    parser.add_argument("--runtime", default="python3.12")
    parser.add_argument("--app-dir", default=".")
    args = parser.parse_args(argv)
    try:
        ws = load_attribute(args.target, args.app_dir)
    except LoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not isinstance(ws, MangumWS):
        print(f"error: {args.target!r} is a {type(ws).__name__}, not a MangumWS", file=sys.stderr)
        return 2
    handler = args.handler or f"{args.target.partition(':')[0]}.handler"
    template = sam_template(ws, handler=handler, code_uri=args.code_uri, runtime=args.runtime)
    with open(args.sam, "w", encoding="utf-8") as out:
        json.dump(template, out, indent=2)
        out.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
