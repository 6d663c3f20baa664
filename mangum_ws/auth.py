"""The connection's authorizer: declared once with ``@ws.authorizer``, run before ``$connect``.

It plays the part of an API Gateway Lambda REQUEST authorizer, on every path: on AWS it *is*
one (lambda_authorizer.py answers the authorizer event), and locally the same function runs
before ``$connect`` (gatekeeper.py). Whatever path, the function sees a :class:`ConnectRequest`
and answers with a :class:`Principal`, or raises ``Reject(401)`` / ``Reject(403)``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from pydantic_core import to_json

from .dispatch import call
from .errors import InvalidPrincipal, RegistrationError, Reject
from .lifecycle import Refusal

logger = logging.getLogger("mangum_ws")

# API Gateway's limit on what a Lambda authorizer returns (policy, principal and context).
MAX_AUTHORIZER_RESPONSE_BYTES: Final = 8 * 1024
# Keys API Gateway itself puts in requestContext.authorizer on later events.
RESERVED_CONTEXT_KEYS: Final = frozenset({"principalId", "integrationLatency"})
# API Gateway's own bounds for an authorizer's result cache (authorizerResultTtlInSeconds).
MAX_CACHE_TTL: Final = 3600
MAX_CACHED: Final = 10_000

UNAUTHORIZED: Final = Refusal(401, "Unauthorized")
FORBIDDEN: Final = Refusal(403, "Forbidden")
FAILED: Final = Refusal(500, "Internal Server Error")

ContextValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """The upgrade request, as a Lambda REQUEST authorizer sees it: header names lower-cased."""

    headers: Mapping[str, str]
    query: Mapping[str, str]
    source_ip: str | None
    stage: str
    method_arn: str = ""
    request_context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who connected: ``principal_id`` and a flat ``context`` that every later event carries
    (``conn.principal``, ``conn.authorizer``). Checked when it is built, as API Gateway checks
    it: string, number and boolean values only, 8 KB in all."""

    principal_id: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.principal_id, str) or not self.principal_id:
            raise InvalidPrincipal(
                f"principal_id must be a non-empty string, not {self.principal_id!r}"
            )
        if not isinstance(self.context, Mapping):
            raise InvalidPrincipal(f"context must be a mapping, not {type(self.context).__name__}")
        for key, value in self.context.items():
            if not isinstance(key, str) or not key:
                raise InvalidPrincipal(f"context key {key!r} is not a non-empty string")
            if key in RESERVED_CONTEXT_KEYS:
                raise InvalidPrincipal(
                    f"context key {key!r} is reserved: API Gateway sets it on later events"
                )
            if not isinstance(value, str | int | float | bool):
                raise InvalidPrincipal(
                    f"context[{key!r}] is a {type(value).__name__}: API Gateway accepts only "
                    "strings, numbers and booleans (encode anything else as a JSON string)"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidPrincipal(f"context[{key!r}] is {value}, which JSON cannot carry")
        size = len(self.response("Allow", "arn:aws:execute-api:*:*:*/*/$connect"))
        if size > MAX_AUTHORIZER_RESPONSE_BYTES:
            raise InvalidPrincipal(
                f"the authorizer's response would be {size} bytes, over API Gateway's "
                f"{MAX_AUTHORIZER_RESPONSE_BYTES}; the largest context value is "
                f"{max(self.context, key=lambda k: len(str(self.context[k])), default='')!r}"
            )

    def response(self, effect: str, method_arn: str) -> bytes:
        return to_json(policy(self.principal_id, effect, method_arn, self.context))

    @property
    def authorizer(self) -> dict[str, Any]:
        """``requestContext.authorizer`` of the connection's later events."""
        return {**self.context, "principalId": self.principal_id}


def policy(
    principal_id: str, effect: str, method_arn: str, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A Lambda authorizer's answer: an IAM policy on the ``$connect`` method ARN."""
    answer: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
            ],
        },
    }
    if context:
        answer["context"] = dict(context)
    return answer


class IdentitySource(NamedTuple):
    """``"query:token"`` or ``"header:authorization"``: where a credential is read."""

    kind: str  # "query" | "header"
    name: str

    @classmethod
    def parse(cls, text: str) -> IdentitySource:
        kind, _, name = text.partition(":") if isinstance(text, str) else ("", "", "")
        if kind not in ("query", "header") or not name or not name.isprintable():
            raise RegistrationError(
                f"identity source {text!r} must be 'query:<name>' or 'header:<name>'"
            )
        return cls(kind, name.lower() if kind == "header" else name)

    @property
    def expression(self) -> str:
        """As API Gateway spells it in an authorizer's IdentitySource."""
        part = "querystring" if self.kind == "query" else "header"
        return f"route.request.{part}.{self.name}"

    def read(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The value, or None when missing or empty (API Gateway's 401 without a call)."""
        value = (headers if self.kind == "header" else query).get(self.name)
        return value or None


def identity_values(
    sources: Iterable[IdentitySource], headers: Mapping[str, str], query: Mapping[str, str]
) -> tuple[str, ...] | None:
    """Every identity source's value, or None when one is missing. ``headers`` are lower-cased."""
    values = tuple(source.read(headers, query) for source in sources)
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


class _Cached(NamedTuple):
    expires: float
    decision: Principal | Refusal


class AuthorizerSpec:
    """The registered authorizer: the function, its identity sources and its result cache."""

    def __init__(
        self, func: Callable[..., Any], identity: Iterable[str], ttl: float, is_async: bool
    ) -> None:
        self.func = func
        self.is_async = is_async
        self.identity = tuple(IdentitySource.parse(text) for text in identity)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 <= ttl <= 3600:
            raise RegistrationError(f"ttl must be 0 to {MAX_CACHE_TTL} seconds, not {ttl!r}")
        if ttl and not self.identity:
            raise RegistrationError("a cached authorizer needs identity sources: its cache key")
        self.ttl = float(ttl)
        self._cache: dict[tuple[str, ...], _Cached] = {}
        self._lock = threading.Lock()  # the emulator runs the function in several threads

    async def decide(self, request: ConnectRequest) -> Principal | Refusal:
        """Run the authorizer as API Gateway would: a missing identity source refuses with 401
        without a call, ``Reject`` refuses, any other exception (an invalid Principal too) is
        logged and refuses with 500."""
        key = identity_values(self.identity, request.headers, request.query)
        if key is None:
            return UNAUTHORIZED
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            found = await call(self.func, self.is_async, request)
            if not isinstance(found, Principal):
                raise InvalidPrincipal(
                    f"the authorizer returned {type(found).__name__}: return a "
                    "mangum_ws.Principal, or raise Reject(401) / Reject(403)"
                )
            decision: Principal | Refusal = found
        except Reject as exc:
            decision = _refusal(exc.status_code)
        except Exception:
            logger.exception("the authorizer %r failed", getattr(self.func, "__qualname__", ""))
            return FAILED  # never cached: the next attempt may succeed
        if self.ttl:
            self._keep(key, decision)
        return decision

    def _cached(self, key: tuple[str, ...]) -> Principal | Refusal | None:
        with self._lock:
            found = self._cache.get(key)
            if found is None:
                return None
            if found.expires <= time.monotonic():
                del self._cache[key]
                return None
            return found.decision

    def _keep(self, key: tuple[str, ...], decision: Principal | Refusal) -> None:
        with self._lock:
            self._cache.pop(key, None)
            self._cache[key] = _Cached(time.monotonic() + self.ttl, decision)
            while len(self._cache) > MAX_CACHED:  # the oldest first: dicts keep insertion order
                del self._cache[next(iter(self._cache))]


def _refusal(status: int) -> Refusal:
    """API Gateway knows three answers: Unauthorized (401), Deny (403), failure (500)."""
    if status == 401:
        return UNAUTHORIZED
    return FAILED if status >= 500 else FORBIDDEN
