"""The node's one retry delay: doubling from ``first``, never above ``cap``, jitter within its band."""

import pytest

from eucaim_node.runtime import backoff_delay


def test_doubles_from_first_and_stops_at_the_cap():
    assert [backoff_delay(n, first=0.5, cap=5.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_an_attempt_below_one_counts_as_the_first():
    assert backoff_delay(0, first=2.0, cap=600.0) == backoff_delay(-3, first=2.0, cap=600.0) == 2.0


def test_a_retry_forever_loop_never_overflows():
    # catalogue-sync's outbox retries without limit: its attempt count can grow past any float exponent
    assert backoff_delay(100_000, first=2.0, cap=600.0, jitter=0.2) <= 600.0


@pytest.mark.parametrize("attempt", [1, 3, 4])  # below the cap (8 s < 10 s / 1.2); at the cap: the next test
def test_jitter_stays_in_its_band_and_under_the_cap(attempt):
    plain = backoff_delay(attempt, first=1.0, cap=10.0)
    drawn = [backoff_delay(attempt, first=1.0, cap=10.0, jitter=0.2) for _ in range(2000)]
    assert all(0.8 * plain <= d <= min(1.2 * plain, 10.0) for d in drawn)
    assert min(drawn) < plain < max(drawn)  # it does spread


def test_at_the_cap_retries_stay_spread_and_never_exceed_it():
    drawn = [backoff_delay(30, first=1.0, cap=10.0, jitter=0.2) for _ in range(500)]
    assert all(10.0 * 0.8 / 1.2 - 1e-9 <= d <= 10.0 for d in drawn)
    # Spread over the band, not piled on the cap (replicas must not fall back into step in a long outage).
    assert max(drawn) - min(drawn) > 2.0 and sum(d == 10.0 for d in drawn) < 5


@pytest.mark.parametrize("jitter", [-0.1, 1.0, 1.5])
def test_a_jitter_outside_zero_to_one_is_refused(jitter):
    with pytest.raises(ValueError, match="jitter"):
        backoff_delay(1, first=1.0, cap=10.0, jitter=jitter)
