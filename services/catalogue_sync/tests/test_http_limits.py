"""The federation API's admission and body bound, in process (no server): who is limited, and when."""

from eucaim_node.catalogue_sync.core.access import Gate, client_address
from eucaim_node.catalogue_sync.core.ratelimit import ClientLimits, TokenBuckets

TOKEN = "focus-token-0123456789abcdef"
WRONG = "Secret wrong-token-000000000"


def gate() -> Gate:
    clock = lambda: 0.0  # noqa: E731 - nothing refills: every spent token stays spent
    return Gate({TOKEN: "focus"}, ClientLimits(TokenBuckets(4, 60, 100, clock), TokenBuckets(2, 60, 100, clock)))


def statuses(g: Gate, authorization: str | None, n: int, *, login: bool) -> list:
    out = []
    for _ in range(n):
        admission = g.admit("192.0.2.7", authorization, login=login)
        out.append(admission.refusal.status if admission.refusal else admission.principal)
    return out


def test_failed_logins_lock_the_address_out_before_the_token_is_checked():
    g = gate()
    assert statuses(g, WRONG, 3, login=True) == [None, None, 429]
    assert statuses(g, f"Secret {TOKEN}", 1, login=True) == [429]
    assert g.admit("192.0.2.8", f"Secret {TOKEN}", login=True).principal == "focus"


def test_anonymous_reads_spend_their_own_budget_and_tokens_are_not_limited():
    g = gate()
    assert statuses(g, None, 5, login=False) == [None, None, None, None, 429]
    assert statuses(g, f"Secret {TOKEN}", 10, login=False) == ["focus"] * 10
    assert statuses(g, f"Bearer {TOKEN}", 1, login=False) == ["focus"]


def test_the_client_behind_a_trusted_proxy_is_the_forwarded_one():
    trusted = frozenset({"10.0.0.1"})
    forwarded = "198.51.100.9, 203.0.113.5, 10.0.0.1"
    assert client_address("10.0.0.1", forwarded, trusted) == "203.0.113.5"
    assert client_address("203.0.113.99", forwarded, trusted) == "203.0.113.99"  # not a proxy: ignored
    assert client_address("10.0.0.1", "", trusted) == "10.0.0.1"


def test_addresses_of_one_ipv6_64_share_a_budget_and_other_64s_do_not():
    g = gate()
    spent = [g.admit(f"2001:db8:1:2::{i:x}", None, login=False).refusal for i in range(1, 6)]
    assert [r.status if r else None for r in spent] == [None, None, None, None, 429]
    assert g.admit("2001:db8:1:3::1", None, login=False).refusal is None  # the next /64 is someone else
    assert [g.admit(f"2001:db8:9:9::{i}", WRONG, login=True).refusal is None for i in (1, 2, 3)] == [True, True, False]


def test_an_ipv4_mapped_address_spends_the_ipv4_address_budget():
    g = gate()
    for _ in range(4):
        assert g.admit("192.0.2.7", None, login=False).refusal is None
    assert g.admit("::ffff:192.0.2.7", None, login=False).refusal.status == 429
