"""A request body read with a bound, for the services' bare-ASGI endpoints (witness, federation API).

The bound holds whatever the client declares: a ``Content-Length`` above it is refused before a byte
is read (RFC 9110 §8.6), and the bytes are counted as they arrive, so a missing, chunked (RFC 9112
§7.1) or lying length is refused as soon as the total passes the bound; nothing past it is buffered.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any


class BodyTooLarge(Exception):
    """The body is (or says it is) larger than ``limit`` bytes: answer 413 (RFC 9110 §15.5.14)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class ClientDisconnected(Exception):
    """The client went away before the body was complete."""


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
