"""``python -m mangum_ws.local MODULE:HANDLER``: a Lambda handler behind a local API Gateway.

The handler runs as on Lambda: before it is imported, the variables Lambda's runtime sets
(AWS_REGION, AWS_LAMBDA_FUNCTION_NAME, ...) are set where missing, and placeholder credentials
are set when this machine has none (the local management API reads no signature). URLs are
printed once the socket accepts connections. Exit 2: bad usage, target or port, in one line.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from typing import Any

from ..app import MangumWS
from ..cli import Parser, bind, fail, load_target
from ..fanout_queue import QUEUE_VARIABLE
from ..loading import mangum_handlers
from .lambda_runtime import PLACEHOLDER_CREDENTIALS, lambda_environment
from .queue_poller import MAX_VISIBILITY
from .server import LocalApiGateway
from .settings import IDLE_TIMEOUT, MAX_CONNECTION_AGE, GatewaySettings


def _hint(module_name: str) -> str:
    names = mangum_handlers(module_name)
    if names:
        return f"pass the Mangum handler, e.g. {module_name}:{names[0]}"
    return "pass the Mangum handler: handler = Mangum(app, custom_handlers=[ws.handler])"


def load(target: str, app_dir: str) -> Any:
    """The Lambda handler ``target`` names; anything else fails in one line with a hint."""
    handler = load_target(target, app_dir)
    module_name = target.partition(":")[0]
    from starlette.applications import Starlette

    if isinstance(handler, MangumWS):
        fail(f"{target!r} is the MangumWS, not the Lambda handler: {_hint(module_name)}")
    if isinstance(handler, Starlette):
        kind = type(handler).__name__
        fail(f"{target!r} is a {kind} app, not the Lambda handler: {_hint(module_name)}")
    if not callable(handler) or inspect.isclass(handler):
        kind = "class" if inspect.isclass(handler) else type(handler).__name__
        fail(f"{target!r} is a {kind}, not a Lambda handler: {_hint(module_name)}")
    try:
        inspect.signature(handler).bind(None, None)
    except TypeError:
        fail(f"{target!r} cannot be called as handler(event, context): {_hint(module_name)}")
    except ValueError:  # no signature to read (a builtin): let the first event tell
        pass
    return handler


def main(argv: list[str] | None = None) -> None:
    parser = Parser("python -m mangum_ws.local", __doc__)
    parser.add_argument(
        "target", help="the Lambda handler, as MODULE:HANDLER (e.g. demochat:handler)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    parser.add_argument("--port", type=int, default=3001, help="the port; 0 picks a free one")
    parser.add_argument("--stage", default="local", help="the stage: URL path and event field")
    parser.add_argument(
        "--route-selection", default="$request.body.action", help="route selection expression"
    )
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
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=IDLE_TIMEOUT,
        metavar="SECONDS",
        help="close a connection idle this long (1001)",
    )
    parser.add_argument(
        "--max-age",
        type=float,
        default=MAX_CONNECTION_AGE,
        metavar="SECONDS",
        help="close a connection open this long (1001)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="Lambda invocations at a time (1: one execution environment)",
    )
    parser.add_argument(
        "--fanout-queue",
        metavar="URL",
        help="consume this SQS queue as Lambda's event source would (e.g. a queue on moto's "
        "server), and give it to the app as MANGUM_WS_FANOUT_QUEUE, as the SAM template does; "
        "default: the MangumWS's own fanout_queue, if it has one",
    )
    parser.add_argument(
        "--fanout-retry-after",
        type=int,
        metavar="SECONDS",
        help="a fan-out record the handler reports failed comes back after this long (0: at "
        "once); receives still count toward the redrive policy. A local shortcut; default: "
        "the queue's visibility timeout, as on AWS",
    )
    parser.add_argument("--app-dir", default=".", help="added to sys.path before importing")
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.fanout_retry_after is not None and not 0 <= args.fanout_retry_after <= MAX_VISIBILITY:
        parser.error(f"--fanout-retry-after must be 0 to {MAX_VISIBILITY} seconds (SQS's range)")

    module_name, _, attribute = args.target.partition(":")
    sock = bind(args.host, args.port, "--port {port}")
    environment = lambda_environment(
        f"{module_name}.{attribute}",
        args.app_dir,
        lambda_endpoint=f"http://{_loopback(args.host)}:{sock.getsockname()[1]}",
    )
    if args.fanout_queue:
        environment[QUEUE_VARIABLE] = args.fanout_queue
    os.environ.update(environment)
    handler = load(args.target, args.app_dir)
    settings = GatewaySettings(
        stage=args.stage,
        route_selection=args.route_selection,
        route_keys=frozenset(args.routes) if args.routes else None,
        route_responses=args.route_responses,
        idle_timeout=args.idle_timeout,
        max_connection_age=args.max_age,
        concurrency=args.concurrency,
        fanout_queue=args.fanout_queue,
        fanout_retry_after=args.fanout_retry_after,
    )
    try:
        gateway = LocalApiGateway(handler, host=args.host, settings=settings, sock=sock)
    except ValueError as exc:  # settings that contradict the MangumWS behind the handler
        fail(str(exc))
    print(describe(environment), file=sys.stderr, flush=True)

    def ready() -> None:
        print(f"WebSocket:       {gateway.ws_url}  (also ws://{args.host}:{gateway.port}/)")
        print(f"Management API:  {gateway.url}  (APIGW_MANAGEMENT_URL)", flush=True)

    gateway.serve_forever(on_ready=ready)


def _loopback(host: str) -> str:
    """Where this machine reaches a server listening on ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0") else host


def describe(environment: dict[str, str]) -> str:
    """One line: which Lambda variables the emulator set, and whether credentials are its own."""
    names = sorted(name for name in environment if name not in PLACEHOLDER_CREDENTIALS)
    region = os.environ.get("AWS_REGION")
    line = f"Lambda environment: region {region}; set {', '.join(names) or 'nothing'}"
    if PLACEHOLDER_CREDENTIALS.keys() <= environment.keys():
        line += "; no AWS credentials found: placeholders (the local API reads no signature)"
    else:
        line += "; AWS credentials: yours, as configured"
    return line


if __name__ == "__main__":
    main()
