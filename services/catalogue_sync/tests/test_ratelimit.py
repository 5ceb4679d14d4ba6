"""Per-address token buckets: budgets, refill, Retry-After and bounded memory, on an injected clock."""

import pytest

from eucaim_node.catalogue_sync.config import CatalogueSyncSettings
from eucaim_node.catalogue_sync.core.ratelimit import TokenBuckets, Verdict


#: These tests are about the federation's limits; Kafka's settings are tested in libs/runtime.
DEVELOPMENT_KAFKA = {"kafka_security_protocol": "PLAINTEXT", "kafka_allow_insecure_plaintext": True}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_budget_is_spent_then_refused_with_the_time_until_the_next_token():
    clock = Clock()
    buckets = TokenBuckets(capacity=5, period=300, max_clients=100, clock=clock)
    assert [buckets.take("10.0.0.1").allowed for _ in range(5)] == [True] * 5
    assert buckets.take("10.0.0.1") == Verdict(False, 60)  # one token every 300/5 s
    assert buckets.check("10.0.0.1") == Verdict(False, 60)
    assert buckets.take("10.0.0.2").allowed  # another address has its own budget
    clock.now += 59
    assert buckets.take("10.0.0.1") == Verdict(False, 1)
    clock.now += 1
    assert buckets.take("10.0.0.1").allowed and not buckets.take("10.0.0.1").allowed


def test_refill_is_capped_at_the_capacity():
    clock = Clock()
    buckets = TokenBuckets(capacity=3, period=3, max_clients=10, clock=clock)
    buckets.take("a")
    clock.now += 10_000
    assert [buckets.take("a").allowed for _ in range(4)] == [True, True, True, False]


def test_check_does_not_spend():
    buckets = TokenBuckets(capacity=1, period=60, max_clients=10, clock=Clock())
    assert all(buckets.check("a").allowed for _ in range(10))
    assert buckets.take("a").allowed and not buckets.check("a").allowed


def test_memory_is_bounded_whatever_the_number_of_addresses():
    clock = Clock()
    buckets = TokenBuckets(capacity=2, period=60, max_clients=1000, clock=clock)
    for i in range(50_000):
        buckets.take(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(buckets) == 1000
    # The most recently active addresses are the ones remembered.
    buckets.take("192.0.2.1")
    buckets.take("192.0.2.1")
    for i in range(999):
        buckets.take(f"198.51.{i >> 8}.{i & 255}")
    assert not buckets.take("192.0.2.1").allowed


def test_invalid_budgets_are_refused():
    with pytest.raises(ValueError):
        TokenBuckets(capacity=0, period=60, max_clients=10)


def test_the_limits_are_on_by_default_and_configurable():
    settings = CatalogueSyncSettings(**DEVELOPMENT_KAFKA, health_port=8080)
    limits = settings.client_limits(Clock())
    assert (limits.anonymous.capacity, limits.failed_logins.capacity) == (60, 5)
    assert settings.federation_max_body_bytes == 256 * 1024
    tight = CatalogueSyncSettings(**DEVELOPMENT_KAFKA, health_port=8080, federation_failed_logins=2, federation_trusted_proxies="10.0.0.1, ::1")
    assert tight.client_limits().failed_logins.capacity == 2
    assert tight.trusted_proxies() == {"10.0.0.1", "::1"}
    with pytest.raises(ValueError, match="not an IP address"):
        CatalogueSyncSettings(**DEVELOPMENT_KAFKA, health_port=8080, federation_trusted_proxies="proxy.example")


def test_ipv6_clients_are_keyed_by_their_64_prefix_and_ipv4_by_address():
    from eucaim_node.catalogue_sync.core.ratelimit import UNPARSABLE_CLIENT, rate_limit_key

    assert rate_limit_key("2001:db8:1:2::1") == rate_limit_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert rate_limit_key("2001:db8:1:2::1") != rate_limit_key("2001:db8:1:3::1")
    assert rate_limit_key("::ffff:192.0.2.7") == rate_limit_key("192.0.2.7") == "192.0.2.7"
    assert rate_limit_key("192.0.2.7") != rate_limit_key("192.0.2.8")
    assert rate_limit_key("unknown") == rate_limit_key("1.2.3.4:80") == rate_limit_key("") == UNPARSABLE_CLIENT
