"""Signed-in callers of the chat demo: its tokens, and the authorizer context they give."""

from __future__ import annotations

from functools import cache
from types import ModuleType
from typing import Any

from tests.support.modules import load_demo


@cache
def _demo() -> ModuleType:
    """The demo's own signer, with its default secret: what a demo started without
    DEMO_JWT_SECRET (a subprocess, a Lambda instance under test) checks. Loaded on first use,
    not at collection: the demo builds a Mangum, which leaves an event loop behind."""
    return load_demo("demochat_tokens")


def token(nick: str, role: str = "member") -> str:
    return str(_demo().issue_token(nick, role))


def signed_in(url: str, nick: str, role: str = "member") -> str:
    """``url`` with the token the demo's page would connect with."""
    return f"{url}{'&' if '?' in url else '?'}token={token(nick, role)}"


def context(nick: str, role: str = "member") -> dict[str, Any]:
    """``requestContext.authorizer`` of a signed-in caller's events, as API Gateway sends it."""
    return {"principalId": nick, "role": role, "integrationLatency": 12}
