"""The Lambda path: real API Gateway events through Mangum(app, custom_handlers=[ws.handler])."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

from mangum_ws import Connection, ConnectionNotReady, MangumWS, Reject
from tests.support.events import (
    FakeLambdaContext,
    connect_event,
    disconnect_event,
    http_api_event,
    message_event,
    rest_api_event,
)
from tests.support.management_api import Answer, ManagementApi


class EchoIn(BaseModel):
    text: str


class EchoOut(BaseModel):
    text: str
    authorizer: dict[str, Any]
    source_ip: str | None


def build(ws: MangumWS) -> tuple[FastAPI, Mangum, dict[str, list[Any]]]:
    seen: dict[str, list[Any]] = {"connect": [], "disconnect": [], "message": []}
    app = FastAPI()

    @app.post("/orders")
    async def orders() -> dict[str, str]:
        return {"ok": "http"}

    @ws.on_connect
    async def on_connect(conn: Connection) -> None:
        seen["connect"].append(conn)
        if conn.query.get("token") == "bad":
            raise Reject(401, "bad token")
        if conn.query.get("token") == "no":
            return False  # type: ignore[return-value]
        if conn.query.get("token") == "crash":
            raise RuntimeError("hook bug")

    @ws.on_disconnect
    async def on_disconnect(conn: Connection) -> None:
        seen["disconnect"].append(conn)

    @ws.on_message
    async def on_message(connection_id: str, data: dict[str, Any]) -> None:
        seen["message"].append((connection_id, data))

    @ws.action("echo")
    async def echo(data: EchoIn, conn: Connection) -> EchoOut:
        return EchoOut(text=data.text, authorizer=dict(conn.authorizer), source_ip=conn.source_ip)

    app.include_router(ws.router)
    return app, Mangum(app, custom_handlers=[ws.handler]), seen


@pytest.fixture
def bridge() -> tuple[MangumWS, Mangum, dict[str, list[Any]]]:
    ws = MangumWS(route_responses=True)
    _, handler, seen = build(ws)
    return ws, handler, seen


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def test_connect_sees_query_headers_and_multi_value_headers(bridge: Any) -> None:
    _, handler, seen = bridge
    event = connect_event(query={"token": "ok", "room": "lobby"})
    event["multiValueHeaders"]["Accept-Language"] = ["en", "fr"]
    response = handler(event, FakeLambdaContext())
    assert response["statusCode"] == 200
    conn = seen["connect"][0]
    assert conn.connection_id == "L0SM9cOFvHcCIhw="
    assert conn.route_key == "$connect"
    assert conn.query == {"token": "ok", "room": "lobby"}
    assert conn.headers["origin"] == "https://chat.example.com"
    assert conn.headers["accept-language"] == "en, fr"
    assert conn.source_ip == "203.0.113.7"


def test_connect_without_query_string_has_empty_query(bridge: Any) -> None:
    _, handler, seen = bridge
    event = connect_event()
    assert "queryStringParameters" not in event
    assert handler(event, FakeLambdaContext())["statusCode"] == 200
    assert seen["connect"][0].query == {}


@pytest.mark.parametrize(
    ("token", "status", "body"),
    [("bad", 401, "bad token"), ("no", 403, "Forbidden"), ("crash", 500, "Internal Server Error")],
)
def test_connect_hook_refuses_with_status(bridge: Any, token: str, status: int, body: str) -> None:
    _, handler, _ = bridge
    response = handler(connect_event(query={"token": token}), FakeLambdaContext())
    assert response["statusCode"] == status
    assert response["body"] == body


def test_connect_echoes_the_first_offered_subprotocol(bridge: Any) -> None:
    _, handler, _ = bridge
    response = handler(connect_event(subprotocol="chat.v1, bearer.abc"), FakeLambdaContext())
    assert response["headers"]["sec-websocket-protocol"] == "chat.v1"


def test_message_with_authorizer_context_of_any_json_type(bridge: Any) -> None:
    _, handler, _ = bridge
    authorizer = {"principalId": "user-1", "integrationLatency": 35, "admin": True, "tier": 3.5}
    event = message_event(
        {"action": "echo", "id": "1", "data": {"text": "hi"}}, authorizer=authorizer
    )
    frame = body_of(handler(event, FakeLambdaContext()))
    assert frame == {
        "type": "result",
        "id": "1",
        "action": "echo",
        "data": {"text": "hi", "authorizer": authorizer, "source_ip": "203.0.113.7"},
    }


def test_message_without_body_is_a_bad_request(bridge: Any) -> None:
    _, handler, seen = bridge
    event = message_event()
    assert "body" not in event
    frame = body_of(handler(event, FakeLambdaContext()))
    assert frame["type"] == "error"
    assert frame["error"]["code"] == "bad_request"
    assert seen["message"] == []


def test_non_json_body_is_a_bad_request(bridge: Any) -> None:
    _, handler, _ = bridge
    frame = body_of(handler(message_event(raw="hello there"), FakeLambdaContext()))
    assert frame["error"] == {
        "code": "bad_request",
        "message": "message is not valid JSON",
        "details": None,
    }


def test_base64_encoded_body_is_decoded(bridge: Any) -> None:
    _, handler, _ = bridge
    raw = json.dumps({"action": "echo", "id": "b", "data": {"text": "é"}}).encode()
    event = message_event(base64_body=base64.b64encode(raw).decode())
    assert event["isBase64Encoded"] is True
    frame = body_of(handler(event, FakeLambdaContext()))
    assert frame["data"]["text"] == "é"


def test_message_id_null_is_accepted(bridge: Any) -> None:
    _, handler, _ = bridge
    event = message_event({"action": "echo", "id": "n", "data": {"text": "x"}}, message_id=None)
    assert event["requestContext"]["messageId"] is None
    assert body_of(handler(event, FakeLambdaContext()))["type"] == "result"


def test_unclaimed_message_goes_to_the_seed_on_message_hook(bridge: Any) -> None:
    _, handler, seen = bridge
    event = message_event({"action": "sendmessage", "text": "legacy"}, route_key="sendmessage")
    response = handler(event, FakeLambdaContext())
    assert response == {"statusCode": 200}
    assert seen["message"] == [("L0SM9cOFvHcCIhw=", {"action": "sendmessage", "text": "legacy"})]


def test_disconnect_carries_status_code_and_reason(bridge: Any) -> None:
    _, handler, seen = bridge
    event = disconnect_event(
        status_code=1006,
        reason="Client disconnected abnormally",
        authorizer={"principalId": "u1", "tier": 2},
    )
    assert handler(event, FakeLambdaContext())["statusCode"] == 200
    conn = seen["disconnect"][0]
    assert conn.route_key == "$disconnect"
    assert conn.request_context["disconnectStatusCode"] == 1006
    assert conn.request_context["disconnectReason"] == "Client disconnected abnormally"
    assert conn.authorizer == {"principalId": "u1", "tier": 2}


def test_websocket_event_with_http_looking_keys_is_still_claimed(bridge: Any) -> None:
    _, handler, _ = bridge
    event = message_event({"action": "echo", "id": "h", "data": {"text": "x"}})
    event.update(httpMethod="POST", path="/orders", resource="/{proxy+}")
    assert body_of(handler(event, FakeLambdaContext()))["type"] == "result"


def test_ordinary_http_events_still_reach_the_app(bridge: Any) -> None:
    _, handler, _ = bridge
    for event in (rest_api_event("/orders"), http_api_event("/orders")):
        response = handler(event, FakeLambdaContext())
        assert response["statusCode"] == 200
        assert json.loads(response["body"]) == {"ok": "http"}


@pytest.mark.parametrize("kind", ["connect", "disconnect", "sendmessage"])
@pytest.mark.parametrize("make_event", [rest_api_event, http_api_event])
def test_internal_routes_refuse_http_callers(bridge: Any, kind: str, make_event: Any) -> None:
    """The spoofing hole: an HTTP caller must not act as someone else's connection."""
    _, handler, seen = bridge
    body = json.dumps({"action": "echo", "id": "1", "data": {"text": "spoofed"}})
    response = handler(
        make_event(f"/internal/websocket/{kind}/L0SM9cOFvHcCIhw=", body), FakeLambdaContext()
    )
    assert response["statusCode"] == 404
    assert seen == {"connect": [], "disconnect": [], "message": []}


def test_a_second_mangum_ws_cannot_borrow_the_first_ones_routes() -> None:
    first, second = MangumWS(route_responses=True), MangumWS(route_responses=True)
    app, _, _ = build(first)
    handler = Mangum(app, custom_handlers=[second.handler])
    event = message_event({"action": "echo", "id": "1", "data": {"text": "x"}})
    assert handler(event, FakeLambdaContext())["statusCode"] == 404


def test_replies_are_posted_when_route_responses_are_off(mgmt_api: ManagementApi) -> None:
    ws = MangumWS(endpoint_url=mgmt_api.url)
    _, handler, _ = build(ws)
    event = message_event({"action": "echo", "id": "p", "data": {"text": "posted"}})
    response = handler(event, FakeLambdaContext())
    assert response == {"statusCode": 200}
    frames = mgmt_api.received("L0SM9cOFvHcCIhw=")
    assert [f["data"]["text"] for f in frames] == ["posted"]  # type: ignore[index]


def test_a_reply_to_a_gone_connection_is_dropped_quietly(mgmt_api: ManagementApi) -> None:
    mgmt_api.responder = lambda cid, attempt: Answer(410)
    ws = MangumWS(endpoint_url=mgmt_api.url)
    _, handler, _ = build(ws)
    event = message_event({"action": "echo", "id": "p", "data": {"text": "x"}})
    assert handler(event, FakeLambdaContext()) == {"statusCode": 200}


def test_missing_hooks_and_actions_never_crash() -> None:
    ws = MangumWS(route_responses=True)
    app = FastAPI()
    app.include_router(ws.router)
    handler = Mangum(app, custom_handlers=[ws.handler])
    assert handler(connect_event(), FakeLambdaContext())["statusCode"] == 200
    frame = body_of(handler(message_event({"action": "nope", "id": "1"}), FakeLambdaContext()))
    assert frame["error"]["code"] == "unknown_action"
    assert handler(disconnect_event(), FakeLambdaContext())["statusCode"] == 200


def test_push_to_the_connecting_id_is_refused_but_others_get_it(
    mgmt_api: ManagementApi,
) -> None:
    ws = MangumWS(endpoint_url=mgmt_api.url)
    app = FastAPI()
    outcome: list[str] = []

    @ws.on_connect
    async def welcome(conn: Connection) -> None:
        try:
            await conn.send({"welcome": True})
        except ConnectionNotReady as exc:
            outcome.append(str(exc))
        await ws.send(connection_ids={"Other0000000000="}, data={"joined": conn.connection_id})

    app.include_router(ws.router)
    handler = Mangum(app, custom_handlers=[ws.handler])
    assert handler(connect_event(), FakeLambdaContext())["statusCode"] == 200
    assert "during its $connect" in outcome[0]
    assert mgmt_api.received("L0SM9cOFvHcCIhw=") == []
    assert mgmt_api.received("Other0000000000=") == [{"joined": "L0SM9cOFvHcCIhw="}]


def test_the_local_gateway_on_lambda_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    ws = MangumWS()
    _, handler, _ = build(ws)
    with caplog.at_level(logging.WARNING, logger="mangum_ws"):
        handler(message_event({"action": "echo", "data": {"text": "x"}}), FakeLambdaContext())
        handler(message_event({"action": "echo", "data": {"text": "x"}}), FakeLambdaContext())
    assert caplog.text.count("sends to local sockets") == 1


def _broken(change: Any) -> dict[str, Any]:
    event = message_event({"action": "echo", "id": "1", "data": {"text": "x"}})
    change(event)
    return event


MALFORMED = {
    "headers not an object": lambda e: e.update(headers=["x"]),
    "header value not a string": lambda e: e.update(headers={"x": 5}),
    "multiValueHeaders not lists": lambda e: e.update(multiValueHeaders={"x": "y"}),
    "query not an object": lambda e: e.update(queryStringParameters="a=b"),
    "query value not a string": lambda e: e.update(queryStringParameters={"a": None}),
    "authorizer not an object": lambda e: e["requestContext"].update(authorizer="me"),
    "identity not an object": lambda e: e["requestContext"].update(identity=["1.2.3.4"]),
    "sourceIp not a string": lambda e: e["requestContext"].update(identity={"sourceIp": 7}),
    "body not a string": lambda e: e.update(body={"action": "echo"}),
    "body not base64": lambda e: e.update(isBase64Encoded=True, body="%%%"),
    "base64 body not UTF-8": lambda e: e.update(isBase64Encoded=True, body="//79"),
    "connectionId missing": lambda e: e["requestContext"].pop("connectionId"),
    "connectionId a number": lambda e: e["requestContext"].update(connectionId=5),
    "connectionId a lone surrogate": lambda e: e["requestContext"].update(connectionId="\ud800"),
    "connectionId 10 KB": lambda e: e["requestContext"].update(connectionId="c" * 10_000),
    "routeKey a list": lambda e: e["requestContext"].update(routeKey=["$default"]),
    "routeKey empty": lambda e: e["requestContext"].update(routeKey=""),
    "eventType a list": lambda e: e["requestContext"].update(eventType=["MESSAGE"]),
    "eventType unknown": lambda e: e["requestContext"].update(eventType="PING"),
    "eventType missing": lambda e: e["requestContext"].pop("eventType"),
    "eventType a dict": lambda e: e["requestContext"].update(eventType={"x": 1}),
    "connectionId missing, eventType unknown": lambda e: e.update(
        requestContext={"eventType": "PING"}
    ),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_websocket_events_get_400_and_one_log_line(
    bridge: Any, change: Any, caplog: pytest.LogCaptureFixture
) -> None:
    _, handler, seen = bridge
    with caplog.at_level(logging.INFO, logger="mangum_ws"):
        response = handler(_broken(change), FakeLambdaContext())
    assert response["statusCode"] == 400
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert record.exc_info is None
    assert record.getMessage().startswith("refused a malformed WebSocket event (400): ")
    assert seen == {"connect": [], "disconnect": [], "message": []}


@pytest.mark.parametrize(
    "event",
    [
        {"requestContext": "MESSAGE"},
        {"requestContext": None},
        [],
        "event",
    ],
    ids=[
        "context a string",
        "context null",
        "a list",
        "a string",
    ],
)
def test_events_that_are_not_websocket_events_are_not_claimed(event: Any) -> None:
    ws = MangumWS()
    config: Any = {}
    assert not ws.handler.infer(event, FakeLambdaContext(), config)


def test_an_oversized_body_is_refused_as_api_gateway_would_never_deliver_it(bridge: Any) -> None:
    _, handler, _ = bridge
    event = message_event({"action": "echo", "id": "1", "data": {"text": "x" * 131_072}})
    assert handler(event, FakeLambdaContext()) == {"statusCode": 413}  # no body: no frame
