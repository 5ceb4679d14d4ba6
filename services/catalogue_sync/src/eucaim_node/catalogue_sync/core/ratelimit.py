"""Per-client token buckets with bounded memory (pure; the clock is injected).

A bucket holds at most ``capacity`` tokens and regains ``capacity`` of them every ``period`` seconds
(continuously); each counted event takes one. An address never seen, or not seen for long, has a
full bucket, so only addresses that recently spent tokens need remembering: the table keeps at most
``max_clients`` of them, least recently used first out. An attacker who cycles through more addresses
than that gets fresh buckets for the evicted ones; that is the price of bounded memory, and per-address
limiting cannot stop a distributed attacker anyway (decision 0072).

Buckets are keyed by :func:`rate_limit_key`, not by the raw address: one IPv6 host is routinely given a
whole /64 (RFC 4291 §2.5.4, RFC 7421), so per-address IPv6 buckets would be free to multiply.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


UNPARSABLE_CLIENT = "unparsable"  # the one bucket every address that is not an IP address shares


def rate_limit_key(address: str) -> str:
    """The bucket key of a client address: an IPv6 address's /64 prefix (the usual assignment to one
    site or host, RFC 4291 §2.5.4), an IPv4 address itself (also when written IPv4-mapped,
    ``::ffff:a.b.c.d``, RFC 4291 §2.5.5.2), and one shared key for anything unparsable, so garbage
    cannot mint fresh buckets."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return UNPARSABLE_CLIENT
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds until one token is back (HTTP Retry-After, RFC 9110 §10.2.3)


class TokenBuckets:
    def __init__(self, capacity: int, period: float, max_clients: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or period <= 0 or max_clients < 1:
            raise ValueError("capacity and max_clients must be >= 1 and period > 0")
        self.capacity = capacity
        self.rate = capacity / period  # tokens per second
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client → (tokens, when)

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, client: str, now: float) -> float:
        tokens, then = self._buckets.get(client, (float(self.capacity), now))
        return min(float(self.capacity), tokens + (now - then) * self.rate)

    def _retry_after(self, tokens: float) -> int:
        return max(1, math.ceil((1 - tokens) / self.rate - 1e-9))  # tolerate float error in the refill

    def check(self, client: str) -> Verdict:
        """Whether ``client`` has a token left, without taking one."""
        tokens = self._tokens(client, self._clock())
        return Verdict(True) if tokens >= 1 else Verdict(False, self._retry_after(tokens))

    def take(self, client: str) -> Verdict:
        """Take one token from ``client``'s bucket if there is one."""
        now = self._clock()
        tokens = self._tokens(client, now)
        if tokens < 1:
            self._remember(client, tokens, now)
            return Verdict(False, self._retry_after(tokens))
        self._remember(client, tokens - 1, now)
        return Verdict(True)

    def _remember(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (tokens, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)


@dataclass(frozen=True)
class ClientLimits:
    """The federation API's two budgets per client address."""

    anonymous: TokenBuckets  # every request without a valid token
    failed_logins: TokenBuckets  # searches without a valid token, and wrong tokens anywhere
