from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.management_api import ManagementApi, management_api


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3 signs every request; no real credentials are ever needed or read.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def mgmt_api() -> Iterator[ManagementApi]:
    with management_api() as api:
        yield api
