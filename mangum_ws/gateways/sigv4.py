"""SigV4 for the Management API's calls: what botocore's ``SigV4Auth`` signs, byte for byte,
for a fraction of its CPU.

``SigV4Auth.add_auth`` derives the signing key (four HMACs) and rebuilds every piece of the
canonical request on each call; for a fan-out of one body to thousands of ids on one endpoint,
nearly all of that is the same every time. Here the key is derived once per day, region,
service and secret (it changes with nothing else), the host and the body's hash are kept, and
a post costs two SHA-256 passes over short strings (the timestamp is formatted once a second,
the canonical path of an id's directory once). Credentials are botocore's own object, asked
for a frozen copy on every request, so they refresh exactly as botocore's clients
refresh them (session tokens included). tests/test_sigv4.py checks each request of a corpus
against ``SigV4Auth`` itself.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from botocore.credentials import Credentials

ALGORITHM: Final = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def utc_now() -> datetime:
    return datetime.now(UTC)


def canonical_host(url: str) -> str:
    """The ``host`` botocore signs for ``url``: lowercase, without the scheme's default port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def canonical_path(path: str) -> str:
    """The canonical URI botocore signs for an execute-api path (non-S3: encoded once more)."""
    from botocore.utils import normalize_url_path

    return quote(normalize_url_path(path), safe="/~")


@lru_cache(maxsize=64)
def _canonical_directory(directory: str) -> str:
    return canonical_path(f"{directory}/x")[:-1]


def canonical_path_fast(path: str) -> str:
    """:func:`canonical_path`, the directory's part computed once: removing dot segments leaves
    a last segment that is neither empty, ``.`` nor ``..`` as it is, and quoting goes
    character by character, so the two parts can be done apart."""
    directory, _, last = path.rpartition("/")
    if (not directory and not path.startswith("/")) or last in ("", ".", ".."):
        return canonical_path(path)
    return _canonical_directory(directory) + quote(last, safe="/~")


class SigV4Signer:
    """Signs requests to one host for one region and service; not thread-safe (the gateway
    signs on its one I/O loop)."""

    def __init__(self, credentials: Credentials, host: str, region: str, service: str) -> None:
        self.credentials = credentials
        self.host = host
        self.region = region
        self.service = service
        self._keys: tuple[str, str, bytes] | None = None  # (secret, day, signing key)
        self._body: bytes | None = None
        self._body_hash = hashlib.sha256(b"").hexdigest()
        self._second = -1
        self._stamp = ""

    def signing_key(self, secret: str, day: str) -> bytes:
        """The derived key for ``day`` (YYYYMMDD): computed once, until the day or secret change."""
        kept = self._keys
        if kept is not None and kept[0] == secret and kept[1] == day:
            return kept[2]
        key = f"AWS4{secret}".encode()
        for part in (day, self.region, self.service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self._keys = (secret, day, key)
        return key

    def _timestamp(self) -> str:
        # strftime is a good part of a post's signing: once a second is enough.
        second = int(time.time())
        if second != self._second:
            self._stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
            self._second = second
        return self._stamp

    def _payload_hash(self, body: bytes) -> str:
        # A fan-out signs one body for every id: hash it once (identity, then equality).
        if body is not self._body and body != self._body:
            self._body_hash = hashlib.sha256(body).hexdigest()
        self._body = body
        return self._body_hash

    def headers(
        self, method: str, path: str, body: bytes, now: datetime | None = None
    ) -> dict[str, str]:
        """The headers that sign ``method path`` with ``body`` (path as sent, percent-encoded):
        Host, X-Amz-Date, X-Amz-Security-Token when the credentials carry one, Authorization."""
        creds = self.credentials.get_frozen_credentials()
        stamp = now.strftime("%Y%m%dT%H%M%SZ") if now is not None else self._timestamp()
        day = stamp[:8]
        if creds.token:
            signed = "host;x-amz-date;x-amz-security-token"
            canonical_headers = (
                f"host:{self.host}\nx-amz-date:{stamp}\n"
                f"x-amz-security-token:{' '.join(creds.token.split())}\n"
            )
        else:
            signed = "host;x-amz-date"
            canonical_headers = f"host:{self.host}\nx-amz-date:{stamp}\n"
        canonical_request = (
            f"{method}\n{canonical_path_fast(path)}\n\n{canonical_headers}\n{signed}\n"
            f"{self._payload_hash(body)}"
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        string_to_sign = (
            f"{ALGORITHM}\n{stamp}\n{scope}\n"
            f"{hashlib.sha256(canonical_request.encode()).hexdigest()}"
        )
        signature = hmac.new(
            self.signing_key(creds.secret_key or "", day), string_to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers = {
            "Host": self.host,
            "X-Amz-Date": stamp,
            "Authorization": f"{ALGORITHM} Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}",
        }
        if creds.token:
            headers["X-Amz-Security-Token"] = creds.token
        return headers
