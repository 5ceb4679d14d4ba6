"""The federation API's admission and body bound, in process (no server): who is limited, and when."""

import asyncio

from faststream.asgi.request import AsgiRequest

from eucaim_node.catalogue_sync.core.ratelimit import ClientLimits, TokenBuckets
from eucaim_node.catalogue_sync.http import FederationApi

TOKEN = "focus-token-0123456789abcdef"


def api(*, trusted=frozenset(), max_body=1024) -> FederationApi:
    clock = lambda: 0.0  # noqa: E731 - nothing refills: every spent token stays spent
    limits = ClientLimits(TokenBuckets(4, 60, 100, clock), TokenBuckets(2, 60, 100, clock))
    return FederationApi(None, None, None, None, {TOKEN: "focus"}, None, None, limits, max_body, trusted)


def statuses(node: FederationApi, headers: dict, n: int, *, login: bool) -> list:
    out = []
    for _ in range(n):
        principal, refusal = node._admit("192.0.2.7", headers, login=login)
        out.append(refusal.status_code if refusal else principal)
    return out


def test_failed_logins_lock_the_address_out_before_the_token_is_checked():
    node = api()
    assert statuses(node, {"authorization": "Secret wrong-token-000000000"}, 3, login=True) == [None, None, 429]
    assert statuses(node, {"authorization": f"Secret {TOKEN}"}, 1, login=True) == [429]
    assert node._admit("192.0.2.8", {"authorization": f"Secret {TOKEN}"}, login=True) == ("focus", None)


def test_anonymous_reads_spend_their_own_budget_and_tokens_are_not_limited():
    node = api()
    assert statuses(node, {}, 5, login=False) == [None, None, None, None, 429]
    assert statuses(node, {"authorization": f"Secret {TOKEN}"}, 10, login=False) == ["focus"] * 10


def test_the_client_behind_a_trusted_proxy_is_the_forwarded_one():
    node = api(trusted=frozenset({"10.0.0.1"}))
    forwarded = {"x-forwarded-for": "198.51.100.9, 203.0.113.5, 10.0.0.1"}
    assert node._client({"client": ("10.0.0.1", 5555)}, forwarded) == "203.0.113.5"
    assert node._client({"client": ("203.0.113.99", 5555)}, forwarded) == "203.0.113.99"  # not a proxy: ignored
    assert node._client({"client": ("10.0.0.1", 5555)}, {}) == "10.0.0.1"


def test_addresses_of_one_ipv6_64_share_a_budget_and_other_64s_do_not():
    node = api()
    spent = [node._admit(f"2001:db8:1:2::{i:x}", {}, login=False)[1] for i in range(1, 6)]
    assert [r.status_code if r else None for r in spent] == [None, None, None, None, 429]
    assert node._admit("2001:db8:1:3::1", {}, login=False) == (None, None)  # the next /64 is someone else
    wrong = {"authorization": "Secret wrong-token-000000000"}
    assert [node._admit(f"2001:db8:9:9::{i}", wrong, login=True)[1] is None for i in (1, 2, 3)] == [True, True, False]


def test_an_ipv4_mapped_address_spends_the_ipv4_address_budget():
    node = api()
    for _ in range(4):
        assert node._admit("192.0.2.7", {}, login=False) == (None, None)
    assert node._admit("::ffff:192.0.2.7", {}, login=False)[1].status_code == 429


def _request(chunks: list[bytes], headers: dict) -> tuple[AsgiRequest, list]:
    received = []

    async def receive():
        received.append(1)
        body = chunks[len(received) - 1]
        return {"type": "http.request", "body": body, "more_body": len(received) < len(chunks)}

    scope = {"type": "http", "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    return AsgiRequest(scope, receive, None), received


def test_the_search_refuses_a_body_past_the_bound_with_413_as_soon_as_it_passes():
    """The bound itself is tested in libs/runtime (eucaim_node.runtime.body); this is the search's use of it."""
    node = api(max_body=1024)
    auth = {"authorization": f"Secret {TOKEN}", "content-type": "application/json"}
    streamed, received = _request([b"x" * 600] * 100, auth)  # 60 KB, no Content-Length
    assert asyncio.run(node.search({}, streamed)).status_code == 413
    assert len(received) == 2  # stopped at the chunk that crossed 1024 bytes
    declared, received = _request([b"{}"], {**auth, "content-length": "5000"})
    assert asyncio.run(node.search({}, declared)).status_code == 413 and received == []
