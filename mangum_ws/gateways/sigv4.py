"""SigV4 for the Management API's calls: what botocore's ``SigV4Auth`` signs, byte for byte,
for a fraction of its CPU.

``SigV4Auth.add_auth`` derives the signing key (four HMACs) and rebuilds every piece of the
canonical request on each call; for a fan-out of one body to thousands of ids on one endpoint,
nearly all of that is the same every time. Here the key (and HMAC's two padded key blocks) is
derived once per day, region, service and secret; what every request signed in one second with
one method, body and set of credentials shares is built once (:class:`_Template`); and a post
costs one SHA-256 of its canonical request and one HMAC. Credentials are botocore's own object,
asked for a frozen copy on every request, so they refresh exactly as botocore's clients refresh
them (session tokens included). tests/test_sigv4.py checks each request of a corpus against
``SigV4Auth`` itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from botocore.credentials import Credentials, ReadOnlyCredentials

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


# Characters ``quote(..., safe="/~")`` leaves as they are, and ``%`` (which it writes as %25).
_UNRESERVED_OR_ESCAPED: Final = re.compile(r"[A-Za-z0-9_.~%-]*")


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
    if _UNRESERVED_OR_ESCAPED.fullmatch(last):  # an id as encode_id sends it: only % to quote
        return _canonical_directory(directory) + last.replace("%", "%25")
    return _canonical_directory(directory) + quote(last, safe="/~")


_IPAD: Final = bytes(x ^ 0x36 for x in range(256))
_OPAD: Final = bytes(x ^ 0x5C for x in range(256))


@dataclass(frozen=True, slots=True)
class _Key:
    """A day's signing key, with HMAC-SHA256's two padded key blocks already hashed in: an
    HMAC is then two copies and two updates (RFC 2104, as the stdlib's pure-Python ``hmac``
    computes it) instead of a new HMAC object, about half the CPU per request."""

    secret: str
    day: str
    key: bytes
    inner: Any  # hashlib's sha256 objects
    outer: Any

    @classmethod
    def derive(cls, secret: str, day: str, region: str, service: str) -> _Key:
        key = f"AWS4{secret}".encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.digest(key, part.encode(), "sha256")
        block = key.ljust(64, b"\0")  # a 32-byte key is shorter than SHA-256's 64-byte block
        inner = hashlib.sha256(block.translate(_IPAD))
        outer = hashlib.sha256(block.translate(_OPAD))
        return cls(secret, day, key, inner, outer)

    def hex_hmac(self, message: bytes) -> str:
        inner = self.inner.copy()
        inner.update(message)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return str(outer.hexdigest())


@dataclass(frozen=True, slots=True)
class _Template:
    """All that the requests signed in one second with one method, body and set of credentials
    share: everything but the canonical path and the signature."""

    stamp: str
    method: str
    body: bytes
    credentials: ReadOnlyCredentials
    key: _Key
    canonical_head: bytes  # "POST\n"
    canonical_tail: bytes  # "\n\n" canonical headers "\n" signed headers "\n" payload hash
    to_sign_head: bytes  # algorithm, timestamp and scope, each on its line
    authorization_head: str  # "AWS4-HMAC-SHA256 Credential=..., Signature="
    token: str | None


class SigV4Signer:
    """Signs requests to one host for one region and service; not thread-safe (the gateway
    signs on its one I/O loop)."""

    def __init__(self, credentials: Credentials, host: str, region: str, service: str) -> None:
        self.credentials = credentials
        self.host = host
        self.region = region
        self.service = service
        self._key: _Key | None = None
        self._template: _Template | None = None
        self._second = -1
        self._stamp = ""

    def signing_key(self, secret: str, day: str) -> bytes:
        """The derived key for ``day`` (YYYYMMDD): computed once, until the day or secret change."""
        return self._derived(secret, day).key

    def _derived(self, secret: str, day: str) -> _Key:
        kept = self._key
        if kept is None or kept.secret != secret or kept.day != day:
            kept = self._key = _Key.derive(secret, day, self.region, self.service)
        return kept

    def _timestamp(self) -> str:
        # strftime is a good part of a post's signing: once a second is enough.
        second = int(time.time())
        if second != self._second:
            self._stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
            self._second = second
        return self._stamp

    def headers(
        self, method: str, path: str, body: bytes, now: datetime | None = None
    ) -> dict[str, str]:
        """The headers that sign ``method path`` with ``body`` (path as sent, percent-encoded):
        Host, X-Amz-Date, X-Amz-Security-Token when the credentials carry one, Authorization."""
        template, signature = self._sign(method, path, body, now)
        headers = {
            "Host": self.host,
            "X-Amz-Date": template.stamp,
            "Authorization": template.authorization_head + signature,
        }
        if template.token:
            headers["X-Amz-Security-Token"] = template.token
        return headers

    def header_lines(self, method: str, path: str, body: bytes, now: datetime | None = None) -> str:
        """:meth:`headers` as ``Name: value\\r\\n`` lines, ready for a request's head."""
        template, signature = self._sign(method, path, body, now)
        lines = (
            f"Host: {self.host}\r\nX-Amz-Date: {template.stamp}\r\n"
            f"Authorization: {template.authorization_head}{signature}\r\n"
        )
        if template.token:
            return f"{lines}X-Amz-Security-Token: {template.token}\r\n"
        return lines

    def _sign(
        self, method: str, path: str, body: bytes, now: datetime | None
    ) -> tuple[_Template, str]:
        # The credentials are asked for on every request, so a refresh signs the very next one.
        creds = self.credentials.get_frozen_credentials()
        stamp = now.strftime("%Y%m%dT%H%M%SZ") if now is not None else self._timestamp()
        template = self._template
        if (
            template is None
            or template.stamp != stamp
            or template.method != method
            or (template.body is not body and template.body != body)
            or (template.credentials is not creds and template.credentials != creds)
        ):
            template = self._template = self._new_template(stamp, method, body, creds)
        canonical_request = (
            template.canonical_head + canonical_path_fast(path).encode() + template.canonical_tail
        )
        digest = hashlib.sha256(canonical_request).hexdigest().encode()
        return template, template.key.hex_hmac(template.to_sign_head + digest)

    def _new_template(
        self, stamp: str, method: str, body: bytes, creds: ReadOnlyCredentials
    ) -> _Template:
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
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        return _Template(
            stamp=stamp,
            method=method,
            body=body,
            credentials=creds,
            key=self._derived(creds.secret_key or "", day),
            canonical_head=f"{method}\n".encode(),
            canonical_tail=(
                f"\n\n{canonical_headers}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
            ).encode(),
            to_sign_head=f"{ALGORITHM}\n{stamp}\n{scope}\n".encode(),
            authorization_head=(
                f"{ALGORITHM} Credential={creds.access_key}/{scope}, "
                f"SignedHeaders={signed}, Signature="
            ),
            token=creds.token or None,
        )
