"""The witness's HTTP interface, a bare ASGI app (served by uvicorn).

- ``POST /add-checkpoint`` (c2sp.org/tlog-witness): ``Authorization: Bearer <token>`` required (401
  otherwise); body at most 64 KiB (413); answers per :mod:`eucaim_node.witness.core.checkpoints`.
- ``GET /checkpoint?origin=<origin>``: the latest checkpoint cosigned for that log, with the log's
  signature and the witness's cosignature (``text/plain``); 404 if none yet. Unauthenticated: a
  checkpoint is public by design (it holds sizes and hashes, nothing about anyone).
- ``GET /vkey``: the witness's verifier key (for convenience: verifiers configure it out of band).
- ``GET /health/live``, ``GET /health/ready``, ``GET /metrics`` (the process's Prometheus metrics).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from eucaim_node.runtime.body import BodyTooLarge, ClientDisconnected, asgi_body_chunks, read_bounded_body

from ...core.checkpoints import MAX_BODY_BYTES, Latest, Refusal, accept, check_submission, origin_of, parse_submission
from ...ports import CheckpointStore

log = logging.getLogger("eucaim_node.witness")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _respond(send: Send, status: int, body: str, content_type: str = "text/plain; charset=utf-8",
                   headers: Mapping[str, str] | None = None) -> None:
    raw = body.encode()
    head = [(b"content-type", content_type.encode()), (b"content-length", str(len(raw)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body, refused (Refusal 413) as soon as it exceeds MAX_BODY_BYTES: never buffered past it."""
    content_length = dict(scope.get("headers", ())).get(b"content-length", b"").decode("latin-1")
    try:
        return await read_bounded_body(content_length, asgi_body_chunks(receive), MAX_BODY_BYTES)
    except BodyTooLarge as exc:
        raise Refusal(413, str(exc)) from None
    except ClientDisconnected:
        raise Refusal(400, "client disconnected") from None


class WitnessApp:
    def __init__(self, *, name: str, key: Ed25519PrivateKey, vkey: str, logs: Mapping[str, Ed25519PublicKey],
                 store: CheckpointStore, token: str, clock: Callable[[], float] = time.time) -> None:
        self.name, self.key, self.vkey, self.logs = name, key, vkey, dict(logs)
        self.store, self.token, self.clock = store, token, clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        routes = {"/add-checkpoint": ("POST", self.add_checkpoint), "/checkpoint": ("GET", self.checkpoint),
                  "/vkey": ("GET", self.get_vkey), "/health/live": ("GET", self.health),
                  "/health/ready": ("GET", self.health), "/metrics": ("GET", self.metrics)}
        if path not in routes:
            await _respond(send, 404, "not found\n")
            return
        allowed, handler = routes[path]
        if method != allowed:
            await _respond(send, 405, f"use {allowed}\n", headers={"allow": allowed})
            return
        try:
            await handler(scope, receive, send)
        except Refusal as refusal:
            await _respond(send, refusal.status, refusal.body, refusal.content_type)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                log.info("witness ready", extra={"witness": self.name, "logs": sorted(self.logs)})
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.store.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _authorised(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers", ()))
        scheme, _, secret = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(secret.strip().encode(), self.token.encode())

    async def add_checkpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._authorised(scope):
            await _respond(send, 401, "a bearer token is required to submit checkpoints\n",
                           headers={"www-authenticate": 'Bearer realm="witness"'})
            return
        body = await _read_body(scope, receive)
        submission = parse_submission(body)
        origin = origin_of(submission.note)
        now = int(self.clock())

        def decide(latest: Latest | None):
            return accept(submission, check_submission(submission, self.logs, latest), self.name, self.key, now)

        try:
            accepted = await asyncio.to_thread(self.store.update, origin, decide, now)
        except Refusal as refusal:
            if refusal.status in (409, 422) and origin in self.logs:  # signed by the log: keep it as evidence
                await asyncio.to_thread(self.store.record_refusal, origin, refusal.status, str(refusal),
                                        body.decode(), now)
            log.warning("checkpoint refused", extra={"origin": origin[:200], "status": refusal.status,
                                                     "reason": str(refusal)[:300]})
            raise
        log.info("checkpoint cosigned", extra={"origin": origin, "tree_size": accepted.checkpoint.size})
        await _respond(send, 200, accepted.cosignature)

    async def checkpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        origin = (query.get("origin") or [""])[0]
        if not origin:
            raise Refusal(400, "give the log as ?origin=<origin>")
        latest = await asyncio.to_thread(self.store.latest, origin)
        if latest is None:
            raise Refusal(404, f"no checkpoint of {origin[:200]!r} witnessed")
        await _respond(send, 200, latest.note)

    async def get_vkey(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _respond(send, 200, self.vkey + "\n")

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        from eucaim_node.telemetry import metrics

        body, content_type = metrics.render()
        await _respond(send, 200, body.decode(), content_type)

    async def health(self, scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.to_thread(self.store.origins)  # the state file answers
        await _respond(send, 200, '{"status":"ok"}', "application/json")
