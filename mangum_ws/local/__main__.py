"""``python -m mangum_ws.local MODULE:HANDLER``: a Lambda handler behind a local API Gateway."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..loading import LoadError, load_attribute
from .server import LocalApiGateway
from .settings import IDLE_TIMEOUT, MAX_CONNECTION_AGE, GatewaySettings


def load(target: str, app_dir: str) -> Any:
    try:
        handler = load_attribute(target, app_dir)
    except LoadError as exc:
        raise SystemExit(f"error: {exc}") from exc
    if not callable(handler):
        raise SystemExit(f"error: {target!r} is not callable")
    return handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mangum_ws.local", description=__doc__)
    parser.add_argument("target", help="the Lambda handler, as MODULE:HANDLER")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--route-selection", default="$request.body.action")
    parser.add_argument(
        "--route",
        action="append",
        dest="routes",
        metavar="KEY",
        help="a custom route key (repeatable); default: read from the MangumWS",
    )
    parser.add_argument(
        "--route-responses",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="two-way routes: send the Lambda's response body to the caller (default: what "
        "the MangumWS behind the handler says; a contradicting value is refused)",
    )
    parser.add_argument("--idle-timeout", type=float, default=IDLE_TIMEOUT, metavar="SECONDS")
    parser.add_argument("--max-age", type=float, default=MAX_CONNECTION_AGE, metavar="SECONDS")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="Lambda invocations at a time (default 1, one environment)",
    )
    parser.add_argument("--app-dir", default=".", help="added to sys.path before importing")
    args = parser.parse_args(argv)

    handler = load(args.target, args.app_dir)
    settings = GatewaySettings(
        stage=args.stage,
        route_selection=args.route_selection,
        route_keys=frozenset(args.routes) if args.routes else None,
        route_responses=args.route_responses,
        idle_timeout=args.idle_timeout,
        max_connection_age=args.max_age,
        concurrency=args.concurrency,
    )
    try:
        gateway = LocalApiGateway(handler, host=args.host, port=args.port, settings=settings)
    except ValueError as exc:  # settings that contradict the MangumWS behind the handler
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"WebSocket:       {gateway.ws_url}  (also ws://{args.host}:{gateway.port}/)", flush=True)
    print(f"Management API:  {gateway.url}  (APIGW_MANAGEMENT_URL)", flush=True)
    try:
        gateway.serve_forever()
    finally:
        gateway.emulator.close()


if __name__ == "__main__":
    main()
