"""The two Management API calls mangum-ws makes, signed and sent without boto3's per-call pipeline.

Why not ``client.post_to_connection``: a call spends ~0.6 ms of CPU in botocore's event hooks,
serialisers and parsers, and ~0.8 ms in all with SigV4 and urllib3, so one process topped out
near 1,250 posts/s whatever the network did (benchmarks/fanout.py). Here a post is one SigV4
signature from :class:`~.sigv4.SigV4Signer` (the derived key kept for its day) and one request
on aiohttp's pool of keep-alive connections, run on the I/O loop (io_loop.py).

Why aiohttp: measured in benchmarks/fanout.py ``--clients`` (the same 32 concurrent posts to
the same endpoint), aiohttp spent about half the CPU per post of urllib3 in threads (which also
serialise on the GIL) and a small fraction of httpx's; it is the maintained asyncio client with
a C HTTP parser.

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
import socket
import ssl
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import ConnectionGone
from .sigv4 import SigV4Signer, canonical_host

if TYPE_CHECKING:
    import aiohttp

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
    """``POST`` / ``DELETE {endpoint}/@connections/{id}``, signed, over one pooled client.

    Built in any thread; used only on the I/O loop (its HTTP client is opened there, at the
    first call).
    """

    def __init__(
        self,
        endpoint_url: str,
        region: str,
        *,
        max_pool_connections: int,
        timeouts: tuple[float, float],
    ) -> None:
        import aiohttp
        import botocore.session
        from botocore.exceptions import NoCredentialsError
        from botocore.utils import get_environ_proxies

        session = botocore.session.get_session()
        credentials = session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self._origin, _, stage_path = self.endpoint_url.partition("://")[2].partition("/")
        self._scheme = self.endpoint_url.partition("://")[0]
        self._stage_path = f"/{stage_path}" if stage_path else ""
        self._base_url = f"{self._scheme}://{self._origin}"
        self._signer = SigV4Signer(credentials, canonical_host(self.endpoint_url), region, SERVICE)
        self._ca_bundle = _ca_bundle(session.get_config_variable("ca_bundle"))
        # Read once, as botocore reads them: aiohttp's trust_env would look the environment
        # (and ~/.netrc) up again in a worker thread on every request, two thread hops a post.
        self._proxy = get_environ_proxies(self.endpoint_url).get(self._scheme)
        self._pool_size = max_pool_connections
        self._timeout = aiohttp.ClientTimeout(sock_connect=timeouts[0], sock_read=timeouts[1])
        self._user_agent = f"mangum-ws/{__version__} aiohttp/{aiohttp.__version__}"
        self._http: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            import aiohttp

            tls = ssl.create_default_context(cafile=self._ca_bundle) if self._ca_bundle else True
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, ssl=tls, socket_factory=_nodelay_socket
            )
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                # aiohttp would add Accept and Accept-Encoding to every request: nothing uses them.
                skip_auto_headers=("Content-Type", "Accept", "Accept-Encoding"),
            )
            # A session dropped with its gateway closes its client (and sockets) on the loop;
            # at exit, the ones still open are closed before the interpreter goes.
            loop = asyncio.get_running_loop()
            finalizer = weakref.finalize(self, _close_later, loop, self._http)
            finalizer.atexit = False
            _open_clients.add(self._http)
            if len(_open_clients) == 1:
                atexit.register(_close_at_exit, loop)
        return self._http

    async def post(self, connection_id: str, data: bytes) -> None:
        """Deliver ``data``; ConnectionGone on 410, botocore's ClientError on any other error."""
        status, headers, content = await self._call("POST", connection_id, data)
        if status == 410:
            raise ConnectionGone(connection_id) from client_error("POST", status, headers, content)
        if status >= 300:
            raise client_error("POST", status, headers, content)

    async def delete(self, connection_id: str) -> None:
        """Close the connection; a connection that is already gone is not an error."""
        status, headers, content = await self._call("DELETE", connection_id, b"")
        if status >= 300 and status != 410:
            raise client_error("DELETE", status, headers, content)

    async def _call(
        self, method: str, connection_id: str, body: bytes
    ) -> tuple[int, Mapping[str, str], bytes]:
        import aiohttp
        from yarl import URL

        path = f"{self._stage_path}/@connections/{encode_id(connection_id)}"
        headers = self._signer.headers(method, path, body)
        headers["User-Agent"] = self._user_agent  # not signed, as in botocore
        # encoded=True: the path goes out exactly as signed, never re-quoted.
        url = URL(self._base_url + path, encoded=True)
        try:
            async with self._client().request(
                method, url, data=body, headers=headers, proxy=self._proxy
            ) as response:
                if response.status < 300:  # nothing to read: its body is not used
                    return response.status, response.headers, b""
                return response.status, response.headers, await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(exc, str(url), self._proxy) from exc


_closing: set[asyncio.Task[None]] = set()
_open_clients: weakref.WeakSet[aiohttp.ClientSession] = weakref.WeakSet()


def _close_at_exit(loop: asyncio.AbstractEventLoop) -> None:
    async def close_all() -> None:
        await asyncio.gather(*(client.close() for client in list(_open_clients)))

    if not loop.is_closed() and _open_clients:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout=2)


def _close_later(loop: asyncio.AbstractEventLoop, client: aiohttp.ClientSession) -> None:
    def close() -> None:
        task = loop.create_task(client.close())
        _closing.add(task)
        task.add_done_callback(_closing.discard)

    if not loop.is_closed():
        loop.call_soon_threadsafe(close)


def _nodelay_socket(addr_info: Any) -> socket.socket:
    # As botocore's clients do: without TCP_NODELAY a small POST can wait ~40 ms on the peer's
    # delayed ACK; keep-alive probes notice a peer that vanished while Lambda was frozen.
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


def _ca_bundle(configured: str | None) -> str | None:
    """botocore's order: AWS_CA_BUNDLE / ca_bundle in the config, then REQUESTS_CA_BUNDLE."""
    return configured or os.environ.get("REQUESTS_CA_BUNDLE") or None


def transport_error(exc: BaseException, url: str, proxy: str | None) -> Exception:
    """The botocore exception boto3 raises for the same failure, so that logs and
    ``SendError.failed`` read as before ("Could not connect to the endpoint URL: ...")."""
    import aiohttp
    from botocore import exceptions

    if isinstance(exc, aiohttp.ClientSSLError):
        return exceptions.SSLError(endpoint_url=url, error=exc)
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return exceptions.ProxyConnectionError(proxy_url=proxy or "", error=exc)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return exceptions.ConnectTimeoutError(endpoint_url=url, error=exc)
    if isinstance(exc, TimeoutError):
        return exceptions.ReadTimeoutError(endpoint_url=url, error=exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exceptions.EndpointConnectionError(endpoint_url=url, error=exc)
    return exceptions.ConnectionClosedError(endpoint_url=url, error=exc)


def client_error(method: str, status: int, headers: Mapping[str, str], content: bytes) -> Exception:
    """The ClientError botocore's rest-json parser would build for this answer."""
    from botocore.exceptions import ClientError

    body: dict[str, Any] = {}
    try:
        parsed = json.loads(content or b"{}")
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    code = (
        headers.get("x-amzn-ErrorType", "").split(":")[0]
        or str(body.get("__type") or body.get("code") or "").rsplit("#", 1)[-1]
        or str(status)
    )
    message = str(body.get("message") or body.get("Message") or "")
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {k.lower(): v for k, v in headers.items()},
                "RequestId": headers.get("x-amzn-RequestId", ""),
                "HostId": "",
                "RetryAttempts": 0,  # each attempt is ours; AwsGateway counts them
            },
        },
        OPERATIONS[method],
    )
