"""The signer against botocore's own SigV4Auth, request by request, on a corpus."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

from mangum_ws.gateways.aws import management_endpoint
from mangum_ws.gateways.management_api import encode_id
from mangum_ws.gateways.sigv4 import (
    SigV4Signer,
    canonical_host,
    canonical_path,
    canonical_path_fast,
)

ENDPOINTS = [
    "https://abc123.execute-api.eu-west-1.amazonaws.com/prod",
    "wss://abc123.execute-api.us-east-1.amazonaws.com/stage-2/",
    "https://ABC.Execute-Api.eu-west-1.amazonaws.com:443/prod",
    "http://127.0.0.1:8123",
    "http://localhost:80/dev/v1",
    "https://ws.example.com/custom/base/path",
]
IDS = ["L0SM9cOFvHcCIhw=", "a=b==", "ünïcödé-id", "a/b+c~% .;", "..", "x" * 128]
CLOCKS = [
    datetime(2026, 1, 2, 3, 4, 5),
    datetime(2026, 3, 31, 23, 59, 59),  # the last second of a day ...
    datetime(2026, 4, 1, 0, 0, 0),  # ... and midnight UTC: a new day, a new signing key
]
CREDENTIALS = [
    Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    Credentials("ASIAEXAMPLE", "secret/with+slash", "IQoJb3JpZ2luX2VjE  token\twith spaces"),
]
BODIES = [b'{"type":"event","event":"chat.message","data":{"text":"h\xc3\xa9"}}', b""]


def botocore_headers(
    credentials: Credentials, region: str, method: str, url: str, body: bytes, now: datetime
) -> dict[str, str]:
    request = AWSRequest(method, url, data=body)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.auth, "get_current_datetime", lambda: now)
        botocore.auth.SigV4Auth(credentials, "execute-api", region).add_auth(request)
    headers = dict(request.headers.items())
    headers["Host"] = canonical_host(url)  # botocore signs it; the HTTP client sends it
    return headers


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("credentials", CREDENTIALS, ids=["keys", "session-token"])
def test_every_request_is_signed_as_botocore_signs_it(
    endpoint: str, credentials: Credentials
) -> None:
    base = management_endpoint(endpoint)
    signer = SigV4Signer(credentials, canonical_host(base), "eu-west-1", "execute-api")
    # The body varies fastest: one request to the next may change only the body.
    for connection_id, now, method, body in itertools.product(
        IDS, CLOCKS, ("POST", "DELETE"), BODIES
    ):
        url = f"{base}/@connections/{percent_encode(connection_id)}"
        path = url.split("://", 1)[1]
        path = path[path.index("/") :]
        ours = signer.headers(method, path, body, now.replace(tzinfo=UTC))
        assert ours == botocore_headers(credentials, "eu-west-1", method, url, body, now), (
            method,
            url,
            now,
        )
        # What goes on the wire: the same headers, as the request's lines. (Consecutive
        # requests change method, body, clock or id: a reused template that should not have
        # been would sign wrong here.)
        lines = signer.header_lines(method, path, body, now.replace(tzinfo=UTC))
        assert lines.endswith("\r\n")
        assert dict(line.split(": ", 1) for line in lines[:-2].split("\r\n")) == ours


def test_a_request_that_differs_in_one_thing_only_is_signed_afresh() -> None:
    # The signer reuses what requests signed in one second with one method and body share:
    # each step here changes exactly one of those (or the day), and must sign as botocore does.
    signer = SigV4Signer(CREDENTIALS[1], "h", "eu-west-1", "execute-api")
    first = CLOCKS[0]
    next_second, next_day = first + timedelta(seconds=1), first + timedelta(days=1)
    steps = [
        ("POST", BODIES[0], first),
        ("DELETE", BODIES[0], first),  # the method
        ("DELETE", BODIES[1], first),  # the body
        ("DELETE", BODIES[1], next_second),  # the second
        ("DELETE", BODIES[1], next_day),  # the day (and so the signing key)
        ("DELETE", bytes(BODIES[1]), next_day),  # an equal body: nothing
        ("DELETE", b"other", next_day),  # a body of another length
    ]
    for method, body, now in steps:
        ours = signer.headers(method, "/@connections/a", body, now.replace(tzinfo=UTC))
        expected = botocore_headers(
            CREDENTIALS[1], "eu-west-1", method, "https://h/@connections/a", body, now
        )
        assert ours == expected, (method, body, now)


def test_the_signing_key_is_derived_once_per_day() -> None:
    signer = SigV4Signer(CREDENTIALS[0], "h", "eu-west-1", "execute-api")
    first = signer.signing_key("secret", "20260331")
    assert signer.signing_key("secret", "20260331") is first
    assert signer.signing_key("secret", "20260401") != first
    assert signer.signing_key("rotated", "20260401") != signer.signing_key("secret", "20260401")


def test_refreshed_credentials_are_used_from_the_next_request() -> None:
    # botocore's RefreshableCredentials hand out a new frozen copy once refreshed: each
    # request asks for one, so a rotated key or token signs the very next request.
    from botocore.credentials import RefreshableCredentials

    generation = itertools.count()

    def refresh() -> dict[str, str]:
        n = next(generation)
        return {
            "access_key": f"ASIA{n}",
            "secret_key": f"secret{n}",
            "token": f"token{n}",
            # Inside botocore's mandatory refresh window (10 min): refreshed on every use.
            "expiry_time": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
        }

    credentials = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    signer = SigV4Signer(credentials, "h", "eu-west-1", "execute-api")
    now = datetime(2026, 1, 2)
    url = "https://h/@connections/a"
    tokens = []
    for _ in range(3):  # same second, method and body: only the credentials change
        ours = signer.headers("POST", "/@connections/a", b"x", now.replace(tzinfo=UTC))
        token = ours["X-Amz-Security-Token"]
        n = token.removeprefix("token")
        expected = Credentials(f"ASIA{n}", f"secret{n}", token)
        assert ours == botocore_headers(expected, "eu-west-1", "POST", url, b"x", now)
        tokens.append(token)
    assert len(set(tokens)) == 3


@pytest.mark.parametrize(
    "path",
    [
        "/@connections/abc=",
        "/prod/@connections/a%3Db",
        "/a/./b/../@connections/x",
        "//prod//@connections/%C3%BC",
        "/@connections/.",
        "/@connections/..",
        "/@connections/",
        "/x",
        "x",
        "",
        "/../..",
        "/a b/~c/@connections/d~e",
    ],
)
def test_the_fast_canonical_path_is_botocores(path: str) -> None:
    assert canonical_path_fast(path) == canonical_path(path)


@pytest.mark.parametrize("connection_id", [*IDS, "", "=", "A-_.~z09", "a b", "é=", "a%3D"])
def test_an_id_is_encoded_as_botocore_encodes_it(connection_id: str) -> None:
    assert encode_id(connection_id) == percent_encode(connection_id)
