"""Who is asking the federation API and whether it may: tokens, client addresses and their budgets (decision 0072).

Pure logic; the HTTP edge hands in the peer address and the headers' values and turns a :class:`Refusal`
into a response. A harvester or the federation's Focus agent presents ``Authorization: Secret <token>``
(``Bearer`` is accepted too); the token's name in the token file is the principal.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .ratelimit import ClientLimits, Verdict, rate_limit_key


@dataclass(frozen=True)
class Refusal:
    """An answer given instead of the resource: its HTTP status, message and, for 429, ``Retry-After`` seconds."""

    status: int
    message: str
    retry_after: int | None = None


@dataclass(frozen=True)
class Admission:
    principal: str | None  # the token's name, or None without a valid token
    refusal: Refusal | None  # 429 when the address's budget is spent


def client_address(peer: str | None, forwarded_for: str, trusted_proxies: frozenset[str]) -> str:
    """The client's address: the TCP peer, or the nearest untrusted hop a trusted proxy forwarded for
    (``X-Forwarded-For`` lists hops left to right, so the last untrusted one is the proxy's own client)."""
    peer = peer or "unknown"
    if peer not in trusted_proxies:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    return next((h for h in reversed(hops) if h not in trusted_proxies), peer)


def _too_many(verdict: Verdict, message: str) -> Refusal:
    return Refusal(429, message, verdict.retry_after)


class Gate:
    """The shared-secret check and the per-address budgets of the federation API."""

    def __init__(self, tokens: dict[str, str], limits: ClientLimits) -> None:
        self._tokens = tokens  # token → principal name
        self.limits = limits

    @property
    def search_enabled(self) -> bool:
        """Without a token file the search (and the datasets) are off: nobody could authenticate."""
        return bool(self._tokens)

    def principal(self, authorization: str | None) -> str | None:
        """The name of the token in ``Authorization: Secret|Bearer <token>``, compared in constant time."""
        scheme, _, secret = (authorization or "").strip().partition(" ")
        if scheme.lower() not in ("secret", "bearer") or not secret:
            return None
        for token, name in self._tokens.items():
            if hmac.compare_digest(secret.strip().encode(), token.encode()):
                return name
        return None

    def admit(self, client: str, authorization: str | None, *, login: bool) -> Admission:
        """``login``: a token is required here, so a request without a valid one is a failed login; elsewhere only
        a wrong token is (``authorization`` None: no header). The failed-login budget is checked before the token,
        so a locked-out address cannot go on guessing."""
        attempt = login or authorization is not None
        bucket = rate_limit_key(client)
        if attempt:
            blocked = self.limits.failed_logins.check(bucket)
            if not blocked.allowed:
                return Admission(None, _too_many(blocked, "too many failed logins from this address; retry later"))
        principal = self.principal(authorization)
        if principal is not None:
            return Admission(principal, None)
        if attempt:
            self.limits.failed_logins.take(bucket)
        return Admission(None, self.anonymous(client))

    def anonymous(self, client: str) -> Refusal | None:
        """Spend one unauthenticated request of ``client``'s budget; a 429 if none is left."""
        verdict = self.limits.anonymous.take(rate_limit_key(client))
        if not verdict.allowed:
            return _too_many(verdict, "too many unauthenticated requests from this address; retry later")
        return None
