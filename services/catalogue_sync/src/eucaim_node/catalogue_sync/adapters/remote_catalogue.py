"""The remote catalogue over HTTP: each dataset version is PUT as Turtle to the configured URL."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from ..ports import PushOutcome


class HttpRemoteCatalogue:
    """``url`` may hold ``{collection_id}``; ``token`` is sent as a bearer token. The ``Idempotency-Key`` (the
    version's ID) lets the remote drop a repeat after a lost answer: delivery is at least once."""

    def __init__(self, url: str, token: str | None, timeout: float, *, transport: httpx.AsyncBaseTransport | None = None):
        self._url = url
        self._token = token
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def put(self, collection_id: str, turtle: str, *, idempotency_key: str, version_label: str) -> PushOutcome:
        url = self._url.replace("{collection_id}", collection_id)
        headers = {"Content-Type": "text/turtle; charset=utf-8", "Idempotency-Key": idempotency_key,
                   "X-EUCAIM-Dataset-Version": version_label}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        remote = urlsplit(url).netloc
        try:
            response = await self._client.put(url, content=turtle.encode(), headers=headers)
        except httpx.HTTPError as exc:  # connection refused, timeout, protocol error: retried by the outbox
            return PushOutcome(None, type(exc).__name__, remote)
        return PushOutcome(response.status_code, None if response.is_success else f"HTTP {response.status_code}", remote)

    async def close(self) -> None:
        await self._client.aclose()
