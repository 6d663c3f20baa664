"""No client can break the event core (issue 11): fuzzed events through the Lambda handler and
fuzzed frames through ws.mount and the local API Gateway, against the contract in
tests/support/fuzzing.py (shared with benchmarks/fuzz.py, which sends 100,000 events).

Bounded: the servers start once per module, examples are few and small, and the rows of the
issue's table run as explicit cases on every path.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.events import connect_event, disconnect_event, message_event
from tests.support.fuzzing import (
    ACTIONS,
    Body,
    Capture,
    LambdaCase,
    LambdaPath,
    Report,
    SocketPath,
    check_disconnects,
    check_socket_logs,
    drive_socket,
    local_gateway_path,
    mount_path,
    random_body,
    random_case,
    random_frame,
    run_clients,
    table_bodies,
)
from tests.support.management_api import management_api

FUZZ = settings(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- Strategies: the shared generators driven by hypothesis, and hypothesis's own JSON --------

lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# Clean text mostly; lone surrogates only where a JSON-decoded Lambda event could hold them.
dirty_text = st.text(st.one_of(st.characters(), lone_surrogates), max_size=20)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
junk_values = st.recursive(
    st.one_of(json_scalars, dirty_text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(dirty_text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def json_messages(draw: st.DrawFn) -> Body:
    """A JSON object that looks more or less like a call."""
    message: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    if draw(st.booleans()):
        message["action"] = draw(st.sampled_from(ACTIONS) | st.text(max_size=20) | json_values)
    if draw(st.booleans()):
        message["id"] = draw(st.text(max_size=140) | json_values)
    if draw(st.booleans()):
        message["data"] = draw(json_values)
    action = message.get("action")
    if isinstance(action, str) and action.startswith("$"):
        message["action"] = "x" + action  # reserved names have rules of their own
    return Body(json.dumps(message, ensure_ascii=draw(st.booleans())), "hypothesis_object")


bodies = st.one_of(
    st.randoms(use_true_random=False).map(random_body),
    json_messages(),
    st.text(max_size=200).map(lambda text: Body(text, "hypothesis_text")),
)
frames = st.one_of(st.randoms(use_true_random=False).map(random_frame), bodies)

EVENT_KEYS = ["headers", "multiValueHeaders", "queryStringParameters", "body", "isBase64Encoded"]
CONTEXT_KEYS = [
    "eventType",
    "connectionId",
    "routeKey",
    "authorizer",
    "identity",
    "messageId",
    "requestId",
    "domainName",
    "stage",
    "connectedAt",
    "disconnectStatusCode",
]


@st.composite
def garbage_events(draw: st.DrawFn) -> LambdaCase:
    """A WebSocket event with a few fields replaced or removed by hypothesis."""
    make = draw(st.sampled_from(["connect", "message", "disconnect"]))
    event = {
        "connect": lambda: connect_event("Gx0123456789ab=", query={"q": "1"}),
        "message": lambda: message_event(raw='{"action":"ping","id":"g"}'),
        "disconnect": lambda: disconnect_event("Gx0123456789ab="),
    }[make]()
    for key, value in draw(
        st.dictionaries(st.sampled_from(EVENT_KEYS), junk_values, max_size=3)
    ).items():
        event[key] = value
    context = event["requestContext"]
    for key, value in draw(
        st.dictionaries(st.sampled_from(CONTEXT_KEYS), junk_values, max_size=3)
    ).items():
        context[key] = value
    for key in draw(st.lists(st.sampled_from(CONTEXT_KEYS), max_size=2)):
        context.pop(key, None)
    return LambdaCase(event, f"garbage:hypothesis-{make}")


lambda_cases = st.one_of(
    st.randoms(use_true_random=False).map(random_case),
    bodies.map(lambda body: LambdaCase(message_event(raw=body.text), f"message:{body.kind}", body)),
    garbage_events(),
)

# -- The Lambda path -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lambda_paths() -> Iterator[dict[bool, LambdaPath]]:
    """Route responses (True) and posts to the management API stand-in (False)."""
    with management_api() as mgmt:
        yield {rr: LambdaPath(mgmt, rr) for rr in (True, False)}


@pytest.fixture
def mangum_loop() -> None:
    """The loop Mangum runs on, as a Lambda process has one (conftest closes it afterwards)."""
    policy = asyncio.get_event_loop_policy()
    try:
        loop = policy.get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        policy.set_event_loop(policy.new_event_loop())


def run_case(path: LambdaPath, case: LambdaCase) -> None:
    report = Report(path.name)
    with Capture() as capture:
        path.run(case, report, capture)
    assert report.violations == 0, report.summary()


@pytest.mark.parametrize("route_responses", [True, False], ids=["route-responses", "posted"])
@pytest.mark.parametrize("body", table_bodies(), ids=lambda body: body.kind)
@pytest.mark.usefixtures("mangum_loop")
def test_table_rows_on_lambda(
    lambda_paths: dict[bool, LambdaPath], route_responses: bool, body: Body
) -> None:
    if body.binary:
        pytest.skip("a binary frame never reaches the Lambda: API Gateway closes with 1003")
    event = message_event(raw=body.text, connection_id="TabLe0123456789=")
    run_case(lambda_paths[route_responses], LambdaCase(event, f"message:{body.kind}", body))


@pytest.mark.parametrize("route_responses", [True, False], ids=["route-responses", "posted"])
@pytest.mark.usefixtures("mangum_loop")
def test_lambda_handler_fuzzed(lambda_paths: dict[bool, LambdaPath], route_responses: bool) -> None:
    @settings(FUZZ, max_examples=250)
    @given(case=lambda_cases)
    def check(case: LambdaCase) -> None:
        run_case(lambda_paths[route_responses], case)

    check()


# -- The socket paths ------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["mount", "local-api-gateway"])
def socket_path(request: pytest.FixtureRequest) -> Iterator[SocketPath]:
    with mount_path() if request.param == "mount" else local_gateway_path() as path:
        yield path


def drive(path: SocketPath, sent: list[Body]) -> None:
    """Send ``sent`` on one socket (reconnecting after each close) and check everything."""
    report = Report(path.name)
    with Capture(ignore_thread=threading.get_ident()) as capture:
        run_clients(drive_socket(path, sent, report, batch=len(sent), grace=0.3))
        check_disconnects(report, path.hooks, timeout=3)
        check_socket_logs(report, capture.take())
    assert report.violations == 0, report.summary()


def test_table_rows_on_sockets(socket_path: SocketPath) -> None:
    drive(socket_path, table_bodies())


def test_sockets_fuzzed(socket_path: SocketPath) -> None:
    @settings(FUZZ, max_examples=25)
    @given(sent=st.lists(frames, min_size=1, max_size=6))
    def check(sent: list[Body]) -> None:
        drive(socket_path, sent)

    check()
