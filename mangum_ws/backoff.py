"""The one backoff rule for every retry mangum-ws makes (Management API posts, DynamoDB)."""

from __future__ import annotations

import random


def full_jitter(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (0 = the first attempt).

    AWS's "full jitter": uniform between 0 and ``base * 2**attempt`` capped at ``cap``, so
    many senders throttled at once do not come back in lockstep.
    """
    return random.uniform(0, min(cap, base * 2**attempt))
