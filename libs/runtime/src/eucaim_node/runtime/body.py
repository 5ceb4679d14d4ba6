"""A request body read with a bound, for the services' bare-ASGI endpoints (witness, federation API).

The bound holds whatever the client declares: a ``Content-Length`` above it is refused before a byte
is read (RFC 9110 §8.6), and the bytes are counted as they arrive, so a missing, chunked (RFC 9112
§7.1) or lying length is refused as soon as the total passes the bound; nothing past it is buffered.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any


class BodyTooLarge(Exception):
    """The body is (or says it is) larger than ``limit`` bytes: answer 413 (RFC 9110 §15.5.14)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class ClientDisconnected(Exception):
    """The client went away before the body was complete."""


class UnreadableBody(Exception):
    """A JSON body that cannot be had: ``status`` 413 (too large) or 400 (incomplete, not JSON); str() says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def asgi_body_chunks(receive: Callable[[], Awaitable[dict[str, Any]]]) -> AsyncIterator[bytes]:
    """The parts of an ASGI request body as they arrive (ASGI HTTP spec, ``http.request`` messages)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def read_bounded_body(content_length: str | None, chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """The whole body from ``chunks``, or BodyTooLarge as soon as the declared or counted size passes ``limit``."""
    declared = (content_length or "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:  # isascii: "²" is a digit too
        raise BodyTooLarge(limit)
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)


async def read_json_body(content_length: str | None, receive: Callable[[], Awaitable[dict[str, Any]]], limit: int,
                         *, what: str = "body") -> Any:
    """The ASGI request's body parsed as JSON (RFC 8259), read with the bound; :class:`UnreadableBody` otherwise."""
    try:
        raw = await read_bounded_body(content_length, asgi_body_chunks(receive), limit)
    except BodyTooLarge:
        raise UnreadableBody(413, f"the {what} is larger than {limit} bytes") from None
    except ClientDisconnected:
        raise UnreadableBody(400, "the client went away before the body was complete") from None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise UnreadableBody(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # a few kB of "[[[[..." nest deeper than the parser's recursion limit
        raise UnreadableBody(400, "the body's JSON is nested too deeply") from None
