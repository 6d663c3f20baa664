"""``python -m mangum_ws.codegen MODULE:ATTR --out DIR [--check]``: schema.json and client.ts.

Exit codes: 0 written (or fresh, with --check); 1 stale files (--check); 2 bad usage, target or
output directory (one line on stderr).
"""

from __future__ import annotations

import os
import sys

from pydantic.errors import PydanticInvalidForJsonSchema, PydanticUserError

from ..app import MangumWS
from ..cli import Parser, fail, load_target
from . import stale_files, write
from .typescript import UnsupportedSchema


def main(argv: list[str] | None = None) -> int:
    parser = Parser("python -m mangum_ws.codegen", __doc__)
    parser.add_argument("target", help="the MangumWS object, as MODULE:ATTR (e.g. app:ws)")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="directory for schema.json and client.ts"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 naming stale files, 0 when fresh",
    )
    parser.add_argument("--app-dir", default=".", help="put on sys.path first (as uvicorn)")
    args = parser.parse_args(argv)

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        fail(f"--out {args.out} is not a directory")
    ws = load_target(args.target, args.app_dir)
    if not isinstance(ws, MangumWS):
        fail(f"{args.target!r} is a {type(ws).__name__}, not a MangumWS")
    title = args.target
    try:
        if args.check:
            stale = stale_files(ws, args.out, title)
            for path in stale:
                print(f"stale: {path}")
            return 1 if stale else 0
        for path in write(ws, args.out, title):
            print(f"wrote {path}")
    except (UnsupportedSchema, PydanticInvalidForJsonSchema, PydanticUserError) as exc:
        fail(f"cannot express a model: {str(exc).splitlines()[0]}")
    except OSError as exc:
        fail(f"cannot write to --out {args.out}: {exc.strerror or exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
