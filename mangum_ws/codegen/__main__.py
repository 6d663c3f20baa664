"""``python -m mangum_ws.codegen MODULE:ATTR --out DIR [--python] [--server NAME=URL]
[--query NAME] [--check]``: schema.json, asyncapi.json, client.ts (and client.py).

Exit codes: 0 written (or fresh, with --check); 1 stale files (--check: each named, then the
command that refreshes them); 2 bad usage, target or output directory (one line on stderr).
"""

from __future__ import annotations

import os
import shlex
import sys

from pydantic.errors import PydanticInvalidForJsonSchema, PydanticUserError

from ..app import MangumWS
from ..cli import Parser, fail, load_target
from . import stale_files, write
from .asyncapi import server_object
from .typescript import UnsupportedSchema


def _server(value: str) -> tuple[str, str]:
    name, sep, url = value.partition("=")
    if not sep or not name:
        fail(f"--server {value!r}: expected NAME=URL, e.g. prod=wss://abc.execute-api...")
    try:
        server_object(url)
    except ValueError as exc:
        fail(f"--server {value!r}: {exc}")
    return name, url


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = Parser("python -m mangum_ws.codegen", __doc__)
    parser.add_argument("target", help="the MangumWS object, as MODULE:ATTR (e.g. app:ws)")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for the files")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming stale files, 0 when fresh",
    )
    parser.add_argument("--app-dir", default=".", help="put on sys.path first (as uvicorn)")
    parser.add_argument(
        "--python",
        action="store_true",
        help="also write client.py, a typed Python client (needs datamodel-code-generator)",
    )
    parser.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="a server for asyncapi.json, e.g. prod=wss://abc.execute-api.../prod (repeatable)",
    )
    parser.add_argument(
        "--query",
        action="append",
        default=[],
        metavar="NAME",
        help="a query parameter $connect reads, for asyncapi.json's ws binding (repeatable)",
    )
    args = parser.parse_args(argv)

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        fail(f"--out {args.out} is not a directory")
    servers = dict(_server(value) for value in args.server)
    ws = load_target(args.target, args.app_dir)
    if not isinstance(ws, MangumWS):
        fail(f"{args.target!r} is a {type(ws).__name__}, not a MangumWS")
    title = args.target
    options = {"servers": servers, "query": args.query, "python": args.python}
    try:
        if args.check:
            stale = stale_files(ws, args.out, title, **options)
            for path in stale:
                print(f"stale: {path}")
            if stale:
                refresh = [a for a in argv if a != "--check"]
                print(f"refresh with: python -m mangum_ws.codegen {shlex.join(refresh)}")
            return 1 if stale else 0
        for path in write(ws, args.out, title, **options):
            print(f"wrote {path}")
    except ImportError as exc:
        fail(f"--python needs datamodel-code-generator (pip install 'mangum-ws[codegen]'): {exc}")
    except (UnsupportedSchema, PydanticInvalidForJsonSchema, PydanticUserError) as exc:
        fail(f"cannot express a model: {str(exc).splitlines()[0]}")
    except (ValueError, OSError) as exc:
        if isinstance(exc, OSError):
            fail(f"cannot write to --out {args.out}: {exc.strerror or exc}")
        fail(str(exc).splitlines()[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
