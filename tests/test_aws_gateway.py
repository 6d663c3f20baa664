"""Sending through API Gateway's management API, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import botocore.auth
import pytest
import trustme
from botocore.config import Config
from botocore.exceptions import ClientError

from mangum_ws import AwsGateway, ConnectionNotReady, MangumWS, PayloadTooLarge, SendError
from mangum_ws.gateways import sigv4
from mangum_ws.lifecycle import connecting_id
from tests.support.management_api import Answer, ManagementApi, live, management_api


def test_send_delivers_and_reports_gone_ids(mgmt_api: ManagementApi) -> None:
    mgmt_api.responder = live({"a", "b"})
    ws = MangumWS(endpoint_url=mgmt_api.url)
    gone = asyncio.run(ws.send(connection_ids={"a", "b", "c", "d"}, data={"hello": "world"}))
    assert gone == {"c", "d"}
    assert mgmt_api.received("a") == [{"hello": "world"}]
    assert mgmt_api.received("b") == [{"hello": "world"}]


def test_send_text_is_sent_verbatim(mgmt_api: ManagementApi) -> None:
    ws = MangumWS(endpoint_url=mgmt_api.url)
    assert asyncio.run(ws.send(connection_ids=["a"], data="plain text")) == set()
    assert mgmt_api.posts == [("a", b"plain text")]


def test_send_to_connection_true_false(mgmt_api: ManagementApi) -> None:
    mgmt_api.responder = live({"alive"})
    ws = MangumWS(endpoint_url=mgmt_api.url)
    assert asyncio.run(ws.send_to_connection("alive", {"n": 1})) is True
    assert asyncio.run(ws.send_to_connection("dead", {"n": 1})) is False


def test_failures_are_never_reported_as_gone(mgmt_api: ManagementApi) -> None:
    mgmt_api.responder = lambda cid, attempt: Answer(
        {"ok": 200, "gone": 410, "forbidden": 403}[cid]
    )
    ws = MangumWS(endpoint_url=mgmt_api.url)
    with pytest.raises(SendError) as info:
        asyncio.run(ws.send(connection_ids=["ok", "gone", "forbidden"], data={"x": 1}))
    assert info.value.gone == {"gone"}
    assert set(info.value.failed) == {"forbidden"}
    assert "ForbiddenException" in repr(info.value.failed["forbidden"])
    assert mgmt_api.received("ok") == [{"x": 1}]
    with pytest.raises(Exception, match="ForbiddenException"):
        asyncio.run(ws.send_to_connection("forbidden", {"x": 1}))


def test_throttling_is_retried_then_delivered(mgmt_api: ManagementApi) -> None:
    mgmt_api.responder = lambda cid, attempt: Answer(429 if attempt < 3 else 200)
    ws = MangumWS(endpoint_url=mgmt_api.url)
    assert asyncio.run(ws.send(connection_ids=["t"], data={"x": 1})) == set()
    assert mgmt_api.attempts["t"] == 3
    assert mgmt_api.received("t") == [{"x": 1}]


def test_the_apis_own_ws_url_posts_over_http(mgmt_api: ManagementApi) -> None:
    # People paste the wss:// URL from the console; the Management API is the same host and
    # stage over https (here ws:// -> http:// because the stand-in speaks plain HTTP).
    ws = MangumWS(endpoint_url=mgmt_api.url.replace("http://", "ws://") + "/")
    assert asyncio.run(ws.send(connection_ids=["a"], data={"x": 1})) == set()
    assert mgmt_api.received("a") == [{"x": 1}]
    stage = AwsGateway("wss://abc.execute-api.eu-west-1.amazonaws.com/prod/")
    assert stage.endpoint_url == "https://abc.execute-api.eu-west-1.amazonaws.com/prod"


@pytest.mark.parametrize(
    "url", ["abc.execute-api.eu-west-1.amazonaws.com/prod", "ftp://host/prod", "https:///prod"]
)
def test_an_endpoint_that_is_not_a_url_is_refused_up_front(url: str) -> None:
    with pytest.raises(ValueError, match="endpoint_url must look like https://"):
        MangumWS(endpoint_url=url)


def test_oversized_payload_is_refused_before_any_call(mgmt_api: ManagementApi) -> None:
    ws = MangumWS(endpoint_url=mgmt_api.url)
    with pytest.raises(PayloadTooLarge):
        asyncio.run(ws.send(connection_ids=["a"], data="x" * (128 * 1024 + 1)))
    assert mgmt_api.attempts == {}


def test_posting_to_the_connecting_id_is_refused(mgmt_api: ManagementApi) -> None:
    ws = MangumWS(endpoint_url=mgmt_api.url)

    async def during_connect() -> None:
        token = connecting_id.set("new")
        try:
            await ws.send(connection_ids=["new", "other"], data="welcome")
        finally:
            connecting_id.reset(token)

    with pytest.raises(ConnectionNotReady):
        asyncio.run(during_connect())
    assert mgmt_api.attempts == {}


def test_the_signed_session_is_built_once_and_reused(mgmt_api: ManagementApi) -> None:
    gateway = AwsGateway(mgmt_api.url)
    ws = MangumWS(gateway=gateway)
    asyncio.run(ws.send(connection_ids=["a"], data="1"))
    api = gateway.api
    asyncio.run(ws.send(connection_ids=["b", "c"], data="2"))
    asyncio.run(ws.disconnect("b"))
    assert gateway.api is api


def test_requests_are_exactly_what_boto3_sends(
    mgmt_api: ManagementApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Same clock, same credentials (with a session token, as on Lambda): our POST and DELETE
    # must carry boto3's path encoding, signed headers and signature, byte for byte.
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: datetime(2026, 1, 2, 3, 4))
    monkeypatch.setattr(sigv4, "utc_now", lambda: datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-from-the-lambda-environment")
    url, region, odd_id = f"{mgmt_api.url}/prod", "eu-west-1", "L0SM9cOFvHcCIhw= a/b+c~%"
    # A fresh session: boto3.client() reuses a default session whose credentials were read by
    # the process's first boto3.client() call, before the token above was set.
    client = boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=url, region_name=region
    )
    client.post_to_connection(ConnectionId=odd_id, Data=b'{"a": 1}')
    client.delete_connection(ConnectionId=odd_id)
    ws = MangumWS(gateway=AwsGateway(url, region_name=region))
    asyncio.run(ws.send(connection_ids=[odd_id], data='{"a": 1}'))
    asyncio.run(ws.disconnect(odd_id))

    signed = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "Host")
    boto_post, boto_delete, our_post, our_delete = mgmt_api.requests
    for ours, boto in ((our_post, boto_post), (our_delete, boto_delete)):
        assert (ours.method, ours.path, ours.body) == (boto.method, boto.path, boto.body)
        assert {h: ours.headers.get(h) for h in signed} == {h: boto.headers.get(h) for h in signed}
    assert "x-amz-security-token" in boto_post.headers["Authorization"]
    assert mgmt_api.posts == [(odd_id, b'{"a": 1}')] * 2


def test_error_answers_become_the_client_errors_boto3_raises(mgmt_api: ManagementApi) -> None:
    mgmt_api.responder = lambda cid, attempt: Answer(int(cid))
    gateway = AwsGateway(mgmt_api.url, max_attempts=1)
    no_retries = Config(retries={"total_max_attempts": 1})
    client = boto3.client("apigatewaymanagementapi", endpoint_url=mgmt_api.url, config=no_retries)
    for status in (403, 413, 429, 500):
        with pytest.raises(ClientError) as ours:
            asyncio.run(gateway.post(str(status), b"x"))
        with pytest.raises(ClientError) as boto:
            client.post_to_connection(ConnectionId=str(status), Data=b"x")
        assert ours.value.response["Error"] == boto.value.response["Error"]
        assert ours.value.operation_name == boto.value.operation_name == "PostToConnection"
        status_of = ours.value.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status_of == status


def test_https_trusts_the_ca_bundle_named_by_aws_ca_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ca = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_side)
    with management_api(tls=server_side) as api:
        untrusted = MangumWS(gateway=AwsGateway(api.url, max_attempts=1))
        with pytest.raises(SendError) as info:
            asyncio.run(untrusted.send(connection_ids=["a"], data="x"))
        assert "CERTIFICATE_VERIFY_FAILED" in str(info.value.failed["a"])
        assert not info.value.gone  # a TLS failure says nothing about the connection

        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "ca.pem"))
        trusted = MangumWS(endpoint_url=api.url)
        assert asyncio.run(trusted.send(connection_ids=["a"], data="x")) == set()
        assert api.posts == [("a", b"x")]


def test_posts_go_through_the_proxy_named_by_http_proxy(
    mgmt_api: ManagementApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As boto3 does: HTTP_PROXY applies unless NO_PROXY names the host. The stand-in plays the
    # proxy; the endpoint's host does not resolve, so only a proxied request can arrive.
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", mgmt_api.url)
    ws = MangumWS(endpoint_url="http://abc.execute-api.invalid/prod")
    assert asyncio.run(ws.send(connection_ids=["a"], data={"x": 1})) == set()
    assert mgmt_api.received("a") == [{"x": 1}]
    assert [r.path for r in mgmt_api.requests] == [
        "http://abc.execute-api.invalid/prod/@connections/a"
    ]
    monkeypatch.setenv("NO_PROXY", "abc.execute-api.invalid")
    bypassing = MangumWS(endpoint_url="http://abc.execute-api.invalid/prod")
    with pytest.raises(SendError):
        asyncio.run(bypassing.send(connection_ids=["b"], data={"x": 1}))
    assert mgmt_api.received("b") == []


def test_post_to_connection_against_moto_server(moto_url: str) -> None:
    ws = MangumWS(endpoint_url=moto_url)
    assert asyncio.run(ws.send(connection_ids={"abc=", "def="}, data={"via": "moto"})) == set()
    assert asyncio.run(ws.send_to_connection("abc=", "again")) is True


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_boto3_is_not_imported_until_the_first_send() -> None:
    result = _run(
        "import json, sys, mangum_ws\n"
        "ws = mangum_ws.MangumWS(endpoint_url='https://x.execute-api.eu-west-1.amazonaws.com/p')\n"
        "print(json.dumps(['boto3' in sys.modules, 'botocore' in sys.modules, ws.is_local]))"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [False, False, False]


def test_missing_boto3_names_the_extra() -> None:
    result = _run(
        "import sys; sys.modules['boto3'] = None\n"
        "import mangum_ws\n"
        "try:\n"
        "    mangum_ws.MangumWS(endpoint_url='http://127.0.0.1:9')\n"
        "except mangum_ws.MissingDependencyError as exc:\n"
        "    print(exc)\n"
        "print(mangum_ws.MangumWS().is_local)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'mangum-ws[aws]'" in result.stdout
    assert result.stdout.strip().endswith("True")
