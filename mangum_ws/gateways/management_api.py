"""The two Management API calls mangum-ws makes, signed and sent without boto3's per-call pipeline.

Why not ``client.post_to_connection``: a call spends ~0.6 ms of CPU in botocore's event hooks,
serialisers and parsers, and ~0.8 ms in all with SigV4 and urllib3, so one process topped out
near 1,250 posts/s whatever the network did (benchmarks/fanout.py). Here a post is one SigV4
signature from :class:`~.sigv4.SigV4Signer` (the derived key kept for its day) and one request
on a pool of keep-alive connections (http_pool.py says why that pool and not aiohttp's), run on
the I/O loop (io_loop.py).

What is still botocore's: the credential chain (refreshed as botocore refreshes it), the id's
percent-encoding, the CA bundle setting. Proxies come from the environment as for boto3
(HTTP_PROXY / HTTPS_PROXY, NO_PROXY). Error answers come back as the ``ClientError`` boto3
would raise (same code, message and status); tests/test_aws_gateway.py checks that a request
carries boto3's exact path and signature. Transport failures are botocore's exceptions too
(``EndpointConnectionError``, ``ReadTimeoutError``, ``SSLError``...), with the cause chained.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import re
import ssl
import weakref
from typing import Any

from .. import __version__
from ..errors import ConnectionGone
from . import http_pool
from .http_pool import HttpPool, Origin
from .sigv4 import SigV4Signer, canonical_host

SERVICE = "execute-api"
# What API Gateway's connection ids are made of (base64 with ``=``): encoded with one replace.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.~=-]*")


def encode_id(connection_id: str) -> str:
    """botocore's ``percent_encode`` of the id (the path boto3 sends), cheaply for plain ids."""
    if _PLAIN_ID.fullmatch(connection_id):
        return connection_id.replace("=", "%3D")
    from botocore.utils import percent_encode

    return str(percent_encode(connection_id))


OPERATIONS = {"POST": "PostToConnection", "DELETE": "DeleteConnection"}


class ManagementApiSession:
    """``POST`` / ``DELETE {endpoint}/@connections/{id}``, signed, over one pool of connections.

    Built in any thread; used only on the I/O loop (its pool is opened there, at the first call).
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        max_pool_connections: int,
        timeouts: tuple[float, float],
    ) -> None:
        import botocore.session
        from botocore.exceptions import NoCredentialsError
        from botocore.utils import get_environ_proxies

        session = botocore.session.get_session()
        credentials = session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        scheme, _, rest = self.endpoint_url.partition("://")
        stage_path = rest.partition("/")[2]
        self._stage_path = f"/{stage_path}" if stage_path else ""
        self._base_url = f"{scheme}://{rest.partition('/')[0]}"
        self._signer = SigV4Signer(credentials, canonical_host(self.endpoint_url), region, SERVICE)
        self._ca_bundle = _ca_bundle(session.get_config_variable("ca_bundle"))
        # Read once, as botocore reads them (the environment, NO_PROXY included).
        proxy = get_environ_proxies(self.endpoint_url).get(scheme)
        self._origin = Origin.of(self.endpoint_url, proxy)
        self._pool_size = max_pool_connections
        self._timeouts = timeouts
        self._user_agent = f"User-Agent: mangum-ws/{__version__}\r\n"  # unsigned, as botocore's
        self._http: HttpPool | None = None

    def _pool(self) -> HttpPool:
        if self._http is None:
            # Loading the trust store takes milliseconds: only where TLS is spoken.
            https = self._origin.scheme == "https"
            tls = ssl.create_default_context(cafile=self._ca_bundle) if https else None
            self._http = HttpPool(
                self._origin,
                size=self._pool_size,
                tls=tls,
                connect_timeout=self._timeouts[0],
                read_timeout=self._timeouts[1],
            )
            # A session dropped with its gateway closes its sockets on the loop; at exit, the
            # pools still open are closed before the interpreter goes.
            loop = asyncio.get_running_loop()
            finalizer = weakref.finalize(self, _close_later, loop, self._http)
            finalizer.atexit = False
            _open_pools.add(self._http)
            if len(_open_pools) == 1:
                atexit.register(_close_at_exit, loop)
        return self._http

    async def post(self, connection_id: str, data: bytes) -> None:
        """Deliver ``data``; ConnectionGone on 410, botocore's ClientError on any other error."""
        answer = await self._call("POST", connection_id, data)
        if answer.status == 410:
            raise ConnectionGone(connection_id) from client_error("POST", answer)
        if answer.status >= 300:
            raise client_error("POST", answer)

    async def delete(self, connection_id: str) -> None:
        """Close the connection; a connection that is already gone is not an error."""
        answer = await self._call("DELETE", connection_id, b"")
        if answer.status >= 300 and answer.status != 410:
            raise client_error("DELETE", answer)

    async def _call(self, method: str, connection_id: str, body: bytes) -> http_pool.Response:
        path = f"{self._stage_path}/@connections/{encode_id(connection_id)}"
        pool = self._pool()
        # The path goes out exactly as signed, never re-quoted.
        lines = self._signer.header_lines(method, path, body) + self._user_agent
        try:
            return await pool.request(pool.head(method, path, lines, len(body)), body)
        except http_pool.HttpError as exc:
            url = self._base_url + path
            raise transport_error(exc, url, self._origin.proxy) from exc


_open_pools: weakref.WeakSet[HttpPool] = weakref.WeakSet()


def _close_at_exit(loop: asyncio.AbstractEventLoop) -> None:
    """Close the pools still open, and wait (briefly) until the loop has done it: the I/O
    thread is a daemon, stopped mid-flight once the interpreter goes."""

    async def close_all() -> None:
        for pool in list(_open_pools):
            pool.close()
        await asyncio.sleep(0)  # one turn of the loop: the transports' close callbacks run

    if not loop.is_closed() and _open_pools:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=2)


def _close_later(loop: asyncio.AbstractEventLoop, pool: HttpPool) -> None:
    if not loop.is_closed():
        loop.call_soon_threadsafe(pool.close)


def _ca_bundle(configured: str | None) -> str | None:
    """botocore's order: AWS_CA_BUNDLE / ca_bundle in the config, then REQUESTS_CA_BUNDLE."""
    return configured or os.environ.get("REQUESTS_CA_BUNDLE") or None


def transport_error(exc: http_pool.HttpError, url: str, proxy: str | None) -> Exception:
    """The botocore exception boto3 raises for the same failure, so that logs and
    ``SendError.failed`` read as before ("Could not connect to the endpoint URL: ...")."""
    from botocore import exceptions

    if isinstance(exc, http_pool.TlsFailed):
        return exceptions.SSLError(endpoint_url=url, error=exc)
    if isinstance(exc, http_pool.ProxyFailed):
        return exceptions.ProxyConnectionError(proxy_url=proxy or "", error=exc)
    if isinstance(exc, http_pool.ConnectTimedOut):
        return exceptions.ConnectTimeoutError(endpoint_url=url, error=exc)
    if isinstance(exc, http_pool.ConnectFailed):
        return exceptions.EndpointConnectionError(endpoint_url=url, error=exc)
    if isinstance(exc, http_pool.ReadTimedOut):
        return exceptions.ReadTimeoutError(endpoint_url=url, error=exc)
    return exceptions.ConnectionClosedError(endpoint_url=url, error=exc)


def client_error(method: str, answer: http_pool.Response) -> Exception:
    """The ClientError botocore's rest-json parser would build for this answer."""
    from botocore.exceptions import ClientError

    status, headers, content = answer.status, answer.headers, answer.body
    body: dict[str, Any] = {}
    try:
        parsed = json.loads(content or b"{}")
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    code = (
        headers.get("x-amzn-errortype", "").split(":")[0]
        or str(body.get("__type") or body.get("code") or "").rsplit("#", 1)[-1]
        or str(status)
    )
    message = str(body.get("message") or body.get("Message") or "")
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": dict(headers),
                "RequestId": headers.get("x-amzn-requestid", ""),
                "HostId": "",
                "RetryAttempts": 0,  # each attempt is ours; AwsGateway counts them
            },
        },
        OPERATIONS[method],
    )
