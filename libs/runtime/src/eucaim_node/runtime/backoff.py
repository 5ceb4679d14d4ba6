"""The one retry delay of the node: exponential backoff, capped, optionally jittered.

Every retry loop (the delivery middleware's redeliveries, reception's polling, the audit service's
background tasks, catalogue-sync's push outbox) asks this function how long to wait, so a successor
tunes one formula, not four. Pure (no I/O, no imports beyond the standard library): a service's core
may use it.
"""

from __future__ import annotations

import random

#: Beyond this many doublings the delay is at its cap for any sane ``first``/``cap`` (2**62 x 1 ms is
#: millennia); clamping keeps ``2 ** exponent`` a float a retry-forever loop can always compute.
_MAX_EXPONENT = 62


def backoff_delay(attempt: int, *, first: float, cap: float, jitter: float = 0.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    ``first * 2 ** (attempt - 1)``, spread by a factor drawn uniformly from ``[1 - jitter, 1 + jitter]``
    (so replicas retrying the same dependency do not retry in step), and never more than ``cap``. The
    spread holds at the cap too: there the unjittered delay is ``cap / (1 + jitter)``, so a long outage's
    retries stay spread over ``[cap (1 - jitter) / (1 + jitter), cap]`` instead of all landing on ``cap``.
    An ``attempt`` below 1 counts as 1.
    """
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    exponent = min(max(attempt, 1) - 1, _MAX_EXPONENT)
    delay = min(first * 2.0 ** exponent, cap / (1.0 + jitter))
    if jitter:
        delay *= random.uniform(1.0 - jitter, 1.0 + jitter)
    return min(delay, cap)
