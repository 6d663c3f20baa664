from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..backoff import full_jitter
from ..errors import ConnectionGone, MissingDependencyError
from ..sending import SendReport, for_each, settling
from .io_loop import io_loop

if TYPE_CHECKING:
    from .management_api import ManagementApiSession

_REGION_IN_URL = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")


_THROTTLED = frozenset(
    {"LimitExceededException", "ThrottlingException", "TooManyRequestsException", "Throttling"}
)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: throttling, a 5xx, or the connection to the endpoint failing."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return exc.response.get("Error", {}).get("Code") in _THROTTLED or status in (
            429,
            500,
            502,
            503,
            504,
        )
    return isinstance(exc, ConnectionError | HTTPClientError)


_SCHEMES = {"https": "https", "http": "http", "wss": "https", "ws": "http"}


def management_endpoint(url: str) -> str:
    """The Management API's base URL for ``url``.

    The API's own ``wss://{api-id}.execute-api.{region}.amazonaws.com/{stage}`` is accepted
    and posted to over ``https://`` (the Management API is that host and stage over HTTPS),
    since that is the URL people copy from the console; anything that is not an http(s) or
    ws(s) URL with a host is refused here rather than on the first send.
    """
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    if not sep or scheme.lower() not in _SCHEMES or not host:
        raise ValueError(
            f"endpoint_url must look like https://{{api-id}}.execute-api.{{region}}"
            f".amazonaws.com/{{stage}} (ws:// and wss:// are accepted too), got {url!r}"
        )
    return f"{_SCHEMES[scheme.lower()]}://{rest}".rstrip("/")


def require_boto3() -> None:
    """botocore (credentials) and httptools (the HTTP parser) come with the ``aws`` extra."""
    for module in ("boto3", "httptools"):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(
                f"sending through API Gateway needs {module}: install the extra with "
                "`pip install 'mangum-ws[aws]'`"
            )


class AwsGateway:
    """API Gateway's Management API (``post_to_connection``, ``delete_connection``).

    Requests are SigV4-signed (gateways/sigv4.py, checked against botocore's signer) and sent on
    one pool of ``max_concurrency`` keep-alive connections (gateways/management_api.py says why
    not through a boto3 client, gateways/http_pool.py why not aiohttp). Nothing of botocore or
    httptools is imported, and no credential read, at import or construction (Lambda cold
    starts): the session is built on the first send and reused. The pool lives on the I/O
    loop (io_loop.py), so sends from any event loop share its connections. Throttling
    (429 / LimitExceededException), 5xx answers, timeouts and dropped connections are retried up
    to ``max_attempts`` with full-jitter exponential backoff (``backoff_base * 2**attempt``,
    capped at ``backoff_cap``).
    """

    def __init__(
        self,
        endpoint_url: str | None = None,
        *,
        region_name: str | None = None,
        max_concurrency: int = 32,
        max_attempts: int = 4,
        backoff_base: float = 0.05,
        backoff_cap: float = 2.0,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
    ) -> None:
        require_boto3()
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.endpoint_url = management_endpoint(endpoint_url) if endpoint_url else None
        self.region_name = region_name
        self.max_concurrency = max_concurrency
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._timeouts = (connect_timeout, read_timeout)
        self._api: ManagementApiSession | None = None
        self._api_lock = threading.Lock()

    @property
    def sockets(self) -> None:
        return None

    def learn_endpoint(self, request_context: Mapping[str, Any]) -> None:
        """Without a configured URL, post back to the API that sent the event."""
        if self.endpoint_url is None:
            domain, stage = request_context.get("domainName"), request_context.get("stage")
            if isinstance(domain, str) and isinstance(stage, str) and domain and stage:
                self.endpoint_url = f"https://{domain}/{stage}"

    def _region(self) -> str:
        if self.region_name:
            return self.region_name
        match = _REGION_IN_URL.search(self.endpoint_url or "")
        if match:
            return match.group(1)
        return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    @property
    def api(self) -> ManagementApiSession:
        """The signed HTTP session, built on first use and then shared by every send."""
        if self._api is None:
            with self._api_lock:
                if self._api is None:
                    if self.endpoint_url is None:
                        raise RuntimeError(
                            "AwsGateway has no endpoint_url: pass one, or let the first API "
                            "Gateway event provide it (https://{domainName}/{stage})"
                        )
                    from .management_api import ManagementApiSession  # at the first send

                    self._api = ManagementApiSession(
                        self.endpoint_url,
                        self._region(),
                        max_pool_connections=self.max_concurrency,
                        timeouts=self._timeouts,
                    )
        return self._api

    async def post(self, connection_id: str, data: bytes) -> None:
        await io_loop.run(self._post_retrying(connection_id, data))

    async def _post_retrying(self, connection_id: str, data: bytes) -> None:
        for attempt in range(self.max_attempts):
            try:
                await self.api.post(connection_id, data)
                return
            except ConnectionGone:
                raise
            except Exception as exc:
                if attempt + 1 >= self.max_attempts or not is_transient(exc):
                    raise
            await asyncio.sleep(full_jitter(attempt, self.backoff_base, self.backoff_cap))

    async def post_many(
        self, connection_ids: Sequence[str], data: bytes, concurrency: int
    ) -> SendReport:
        """The whole fan-out in one coroutine on the I/O loop: one hop there and back for all
        the ids, ``concurrency`` (at most ``max_concurrency``) posts in flight."""
        return await io_loop.run(
            self._post_all(connection_ids, data, min(concurrency, self.max_concurrency))
        )

    async def _post_all(
        self, connection_ids: Sequence[str], data: bytes, concurrency: int
    ) -> SendReport:
        report = SendReport()
        post = settling(report, lambda connection_id: self._post_retrying(connection_id, data))
        await for_each(connection_ids, post, concurrency)
        return report

    async def delete(self, connection_id: str) -> None:
        await io_loop.run(self._delete(connection_id))

    async def _delete(self, connection_id: str) -> None:
        await self.api.delete(connection_id)
