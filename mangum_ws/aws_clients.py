"""The boto3 clients mangum-ws makes besides the Management API's (Lambda's Invoke, SQS)."""

from __future__ import annotations

from typing import Any

from .errors import MissingDependencyError


def boto3_client(
    service: str,
    needed_for: str,
    *,
    region: str | None,
    endpoint_url: str | None = None,
    read_timeout: float = 5,
) -> Any:
    """A client of its own session, imported and built only now (Lambda cold starts), with
    short timeouts and botocore's standard retries."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        raise MissingDependencyError(
            f"{needed_for} need boto3: install the extra with `pip install 'mangum-ws[aws]'`"
        ) from None
    session: Any = boto3.session.Session()  # Any: the stubs type client() per service name
    return session.client(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=2,
            read_timeout=read_timeout,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )
