"""The two Management API calls mangum-ws makes, signed and sent without boto3's per-call pipeline.

Why not ``client.post_to_connection``: a call spends ~0.6 ms of CPU in botocore's event hooks,
serialisers and parsers before and after the HTTP exchange, and fan-out threads share one GIL,
so that pipeline, not the network, capped a 1,000-id send at ~1,000 posts/s
(benchmarks/fanout.py). Both calls are one path with the connection id in it, so everything
that matters is still botocore's own: the credential chain, the SigV4 signer, the id's
percent-encoding, and the urllib3 session (pooling, proxies from the environment, CA bundle,
timeouts). Errors come back as the ``ClientError`` boto3 would raise (same code, message and
status), and tests/test_aws_gateway.py checks that a request carries boto3's exact path and
signature.
"""

from __future__ import annotations

import json
import os
import socket
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..errors import ConnectionGone

if TYPE_CHECKING:
    from botocore.awsrequest import AWSResponse
    from botocore.credentials import Credentials
    from botocore.httpsession import URLLib3Session

SERVICE = "execute-api"
OPERATIONS = {"POST": "PostToConnection", "DELETE": "DeleteConnection"}


class ManagementApiSession:
    """``POST`` / ``DELETE {endpoint}/@connections/{id}``, signed, over one pooled session.

    Thread-safe: the fan-out's worker threads share one instance (urllib3's pool is
    thread-safe; frozen credentials are taken per request so a refresh is never half-seen).
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
        from botocore.httpsession import URLLib3Session
        from botocore.utils import get_environ_proxies

        session = botocore.session.get_session()
        credentials = session.get_credentials()
        if credentials is None:
            raise NoCredentialsError()
        self._credentials: Credentials = credentials
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        # Typed loosely on purpose: botocore-stubs narrow these (verify: bool, timeout: int,
        # socket_options: list[str]); botocore takes a CA path, (connect, read) timeouts and
        # (level, option, value) tuples, as its own clients pass them.
        options: dict[str, Any] = {
            "verify": _ca_bundle(session.get_config_variable("ca_bundle")),
            "proxies": get_environ_proxies(self.endpoint_url),
            "timeout": timeouts,
            "max_pool_connections": max_pool_connections,
            # As botocore's clients do: without TCP_NODELAY a small POST can wait ~40 ms on
            # the peer's delayed ACK.
            "socket_options": [
                (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
                (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
            ],
        }
        self._http: URLLib3Session = URLLib3Session(**options)
        self._user_agent = f"mangum-ws/{__version__} botocore/{botocore.__version__}"

    def post(self, connection_id: str, data: bytes) -> None:
        """Deliver ``data``; ConnectionGone on 410, botocore's ClientError on any other error."""
        response = self._call("POST", connection_id, data)
        if response.status_code == 410:
            raise ConnectionGone(connection_id) from _client_error("POST", response)
        if response.status_code >= 300:
            raise _client_error("POST", response)

    def delete(self, connection_id: str) -> None:
        """Close the connection; a connection that is already gone is not an error."""
        response = self._call("DELETE", connection_id, b"")
        if response.status_code >= 300 and response.status_code != 410:
            raise _client_error("DELETE", response)

    def _call(self, method: str, connection_id: str, body: bytes) -> AWSResponse:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.utils import percent_encode

        url = f"{self.endpoint_url}/@connections/{percent_encode(connection_id)}"
        request = AWSRequest(method, url, data=body)
        SigV4Auth(self._credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(
            request
        )
        request.headers["User-Agent"] = self._user_agent  # not signed, as in botocore
        return self._http.send(request.prepare())


def _ca_bundle(configured: str | None) -> str | bool:
    """botocore's order: AWS_CA_BUNDLE / ca_bundle in the config, then REQUESTS_CA_BUNDLE."""
    return configured or os.environ.get("REQUESTS_CA_BUNDLE") or True


def _client_error(method: str, response: AWSResponse) -> Exception:
    """The ClientError botocore's rest-json parser would build for this answer."""
    from botocore.exceptions import ClientError

    body: dict[str, Any] = {}
    try:
        parsed = json.loads(response.content or b"{}")
        if isinstance(parsed, dict):
            body = parsed
    except ValueError:
        pass
    code = (
        response.headers.get("x-amzn-ErrorType", "").split(":")[0]
        or str(body.get("__type") or body.get("code") or "").rsplit("#", 1)[-1]
        or str(response.status_code)
    )
    message = str(body.get("message") or body.get("Message") or "")
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "HTTPStatusCode": response.status_code,
                "HTTPHeaders": {k.lower(): v for k, v in response.headers.items()},
                "RequestId": response.headers.get("x-amzn-RequestId", ""),
                "HostId": "",
                "RetryAttempts": 0,  # each attempt is ours; AwsGateway counts them
            },
        },
        OPERATIONS[method],
    )
