"""The bounded request-body reader shared by the witness and the federation API."""

import pytest

from eucaim_node.runtime.body import (
    BodyTooLarge,
    ClientDisconnected,
    UnreadableBody,
    asgi_body_chunks,
    read_bounded_body,
    read_json_body,
)


def asgi(parts: list[bytes]):
    """An ASGI ``receive`` sending ``parts`` as one chunked body, and the list of messages it handed out."""
    sent = []

    async def receive():
        sent.append(parts[len(sent)])
        return {"type": "http.request", "body": sent[-1], "more_body": len(sent) < len(parts)}

    return receive, sent


async def test_a_content_length_over_the_bound_is_refused_before_a_byte_is_read():
    receive, sent = asgi([b"{}"])
    with pytest.raises(BodyTooLarge):
        await read_bounded_body("1025", asgi_body_chunks(receive), 1024)
    assert sent == []


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_bound():
    receive, sent = asgi([b"x" * 600] * 100)  # 60 KB, no Content-Length
    with pytest.raises(BodyTooLarge):
        await read_bounded_body(None, asgi_body_chunks(receive), 1024)
    assert len(sent) == 2  # stopped at the chunk that crossed 1024 bytes


async def test_a_body_of_exactly_the_bound_is_accepted():
    receive, _ = asgi([b"x" * 1000, b"y" * 24])
    assert await read_bounded_body("1024", asgi_body_chunks(receive), 1024) == b"x" * 1000 + b"y" * 24


@pytest.mark.parametrize("declared", ["10", "0", "²", "abc", "-5"])
async def test_a_lying_or_malformed_content_length_changes_nothing(declared):
    receive, sent = asgi([b"x" * 600, b"x" * 600, b"x" * 600])
    with pytest.raises(BodyTooLarge):
        await read_bounded_body(declared, asgi_body_chunks(receive), 1024)
    assert len(sent) == 2


async def test_a_client_that_goes_away_mid_body_is_told_apart():
    messages = [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}]

    async def receive():
        return messages.pop(0)

    with pytest.raises(ClientDisconnected):
        await read_bounded_body(None, asgi_body_chunks(receive), 1024)


@pytest.mark.parametrize(("messages", "status", "message"), [
    ([{"type": "http.request", "body": b'{"a": [1', "more_body": False}], 400, "not valid JSON"),
    ([{"type": "http.request", "body": b'{"a":', "more_body": True}, {"type": "http.disconnect"}], 400, "went away"),
    ([{"type": "http.request", "body": b"[" * 4000, "more_body": False}], 413, "the query is larger than 2048 bytes"),
    # Within the bound, yet deeper than the JSON parser's recursion limit (a RecursionError, not a ValueError).
    ([{"type": "http.request", "body": b"[" * 1000 + b"]" * 1000, "more_body": False}], 400, "nested too deeply"),
])
async def test_a_json_body_that_cannot_be_had_says_why_with_its_status(messages, status, message):
    pending = iter(messages)

    async def receive():
        return next(pending)

    with pytest.raises(UnreadableBody) as refused:
        await read_json_body(None, receive, 2048, what="query")
    assert refused.value.status == status and message in str(refused.value)


async def test_a_json_body_within_the_bound_is_parsed():
    async def receive():
        return {"type": "http.request", "body": b'{"ast": {}}', "more_body": False}

    assert await read_json_body("11", receive, 1024) == {"ast": {}}
