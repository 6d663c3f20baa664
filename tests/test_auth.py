"""@ws.authorizer on the Lambda path: API Gateway's authorizer events in, IAM policies out, and
the context on every later event; forged contexts cannot come from HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from mangum import Mangum
from pydantic import BaseModel

from mangum_ws import (
    Connection,
    ConnectRequest,
    InvalidPrincipal,
    MangumWS,
    Principal,
    RegistrationError,
    Reject,
)
from tests.support.events import (
    FakeLambdaContext,
    authorizer_event,
    connect_event,
    message_event,
    rest_api_event,
)

ARN = "arn:aws:execute-api:us-east-1:123456789012:abcd123xyz/prod/$connect"


class Me(BaseModel):
    principal: str | None
    authorizer: dict[str, Any]


def build(ttl: float = 0) -> tuple[Any, list[ConnectRequest]]:
    ws = MangumWS(route_responses=True)
    app = FastAPI()
    calls: list[ConnectRequest] = []

    @ws.authorizer(identity=["query:token", "header:X-Tenant"], ttl=ttl)
    def sign_in(request: ConnectRequest) -> Principal:
        calls.append(request)
        token = request.query["token"]
        if token == "crash":
            raise RuntimeError("the identity provider is down")
        if token == "nested":
            return Principal("u", {"roles": ["admin"]})  # type: ignore[dict-item]
        if token == "expired":
            raise Reject(401)
        if token == "banned":
            raise Reject(403)
        return Principal(f"user-{token}", {"tenant": request.headers["x-tenant"], "admin": True})

    @ws.action("me")
    async def me(conn: Connection) -> Me:
        return Me(principal=conn.principal, authorizer=dict(conn.authorizer))

    app.include_router(ws.router)
    return Mangum(app, custom_handlers=[ws.handler]), calls


def authorize(handler: Any, token: str | None, tenant: str | None = "acme") -> Any:
    event = authorizer_event(
        query=None if token is None else {"token": token},
        headers=None if tenant is None else {"X-Tenant": tenant},
    )
    return handler(event, FakeLambdaContext())


def test_an_allowed_caller_gets_the_policy_api_gateway_expects() -> None:
    handler, calls = build()
    answer = authorize(handler, "7")
    assert answer == {
        "principalId": "user-7",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ARN}],
        },
        "context": {"tenant": "acme", "admin": True},
    }
    [request] = calls
    assert (request.query, request.headers["x-tenant"], request.method_arn) == (
        {"token": "7"},
        "acme",
        ARN,
    )
    assert (request.source_ip, request.stage) == ("203.0.113.7", "prod")


def test_later_events_carry_the_context_as_api_gateway_delivers_it() -> None:
    handler, _ = build()
    answer = authorize(handler, "7")
    # What API Gateway puts in requestContext.authorizer of every later event.
    delivered = {**answer["context"], "principalId": answer["principalId"], "integrationLatency": 3}
    ctx = FakeLambdaContext()
    assert handler(connect_event("c1", authorizer=delivered), ctx)["statusCode"] == 200
    reply = handler(message_event({"action": "me", "id": "1"}, "c1", authorizer=delivered), ctx)
    assert json.loads(reply["body"])["data"] == {"principal": "user-7", "authorizer": delivered}


def test_a_denied_caller_gets_a_deny_policy() -> None:
    handler, _ = build()
    answer = authorize(handler, "banned")
    assert answer["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": ARN}
    ]
    assert "context" not in answer


def test_unauthorized_is_the_function_error_api_gateway_turns_into_401() -> None:
    handler, _ = build()
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(handler, "expired")


@pytest.mark.parametrize(("token", "tenant"), [(None, "acme"), ("7", None), ("", "acme")])
def test_a_missing_identity_source_is_401_without_calling_the_authorizer(
    token: str | None, tenant: str | None
) -> None:
    handler, calls = build()
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(handler, token, tenant)
    assert calls == []


@pytest.mark.parametrize(
    ("token", "logged"),
    [("crash", "the identity provider is down"), ("nested", "context['roles'] is a list")],
)
def test_a_crash_or_an_invalid_context_is_a_function_error_other_than_unauthorized(
    caplog: pytest.LogCaptureFixture, token: str, logged: str
) -> None:
    handler, _ = build()
    with pytest.raises(Exception, match="authorizer failed") as info:
        authorize(handler, token)
    assert str(info.value) != "Unauthorized"  # API Gateway answers 500, not 401
    assert logged in caplog.text


def test_the_cache_answers_the_same_identity_until_its_ttl() -> None:
    handler, calls = build(ttl=300)
    first, second = authorize(handler, "7"), authorize(handler, "7")
    assert first == second
    authorize(handler, "8")
    assert [c.query["token"] for c in calls] == ["7", "8"]
    uncached, calls_uncached = build()
    authorize(uncached, "7")
    authorize(uncached, "7")
    assert len(calls_uncached) == 2


def test_an_authorizer_event_without_an_authorizer_fails_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ws = MangumWS()
    app = FastAPI()
    app.include_router(ws.router)
    with pytest.raises(Exception, match="authorizer failed"):
        Mangum(app, custom_handlers=[ws.handler])(authorizer_event(), FakeLambdaContext())
    assert "no @ws.authorizer is registered" in caplog.text


def test_a_forged_authorizer_context_cannot_come_from_http(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, _ = build()
    for path in ("/internal/websocket/sendmessage/c1", "/internal/websocket/authorize"):
        event = rest_api_event(path, json.dumps({"action": "me", "id": "1"}))
        event["requestContext"]["authorizer"] = {"principalId": "admin", "admin": True}
        answer = handler(event, FakeLambdaContext())
        assert answer["statusCode"] == 404
        assert "admin" not in answer.get("body", "")


@pytest.mark.parametrize(
    ("principal_id", "context", "message"),
    [
        ("u", {"roles": ["a"]}, "context['roles'] is a list"),
        ("u", {"who": None}, "context['who'] is a NoneType"),
        ("u", {"nested": {"a": 1}}, "context['nested'] is a dict"),
        ("u", {"principalId": "x"}, "'principalId' is reserved"),
        ("u", {"n": float("nan")}, "context['n'] is nan"),
        ("u", {"big": "x" * 9000}, "over API Gateway's 8192; the largest context value is 'big'"),
        ("", {}, "principal_id must be a non-empty string"),
    ],
)
def test_a_principal_api_gateway_would_refuse_is_refused_when_built(
    principal_id: str, context: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidPrincipal, match=message.replace("[", r"\[").replace("]", r"\]")):
        Principal(principal_id, context)


def test_a_principal_of_strings_numbers_and_booleans_up_to_8_kb_is_fine() -> None:
    Principal("u", {"s": "x" * 7000, "i": 3, "f": 2.5, "b": False})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"identity": ["cookie:session"]}, "must be 'query:<name>' or 'header:<name>'"),
        ({"identity": ["query:"]}, "must be 'query:<name>' or 'header:<name>'"),
        ({"identity": ["query:t"], "ttl": 3601}, "ttl must be 0 to 3600"),
        ({"ttl": 60}, "needs identity sources"),
    ],
)
def test_bad_authorizer_declarations_are_refused_at_registration(
    kwargs: dict[str, Any], message: str
) -> None:
    ws = MangumWS()
    with pytest.raises(RegistrationError, match=message):
        ws.authorizer(**kwargs)(lambda request: Principal("u"))


def test_one_authorizer_per_app() -> None:
    ws = MangumWS()
    ws.authorizer()(lambda request: Principal("u"))
    with pytest.raises(RegistrationError, match="registered twice"):
        ws.authorizer()(lambda request: Principal("u"))


def test_the_old_mount_hook_cannot_be_combined_with_the_authorizer() -> None:
    ws = MangumWS()
    ws.authorizer()(lambda request: Principal("u"))
    with pytest.raises(ValueError, match="not both"):
        ws.mount(FastAPI(), authorizer=lambda conn: {})


def test_connection_principal_is_none_without_an_authorizer() -> None:
    assert Connection("c1", sender=MangumWS()).principal is None
    assert Connection("c1", sender=MangumWS(), authorizer={"principalId": "u"}).principal == "u"
