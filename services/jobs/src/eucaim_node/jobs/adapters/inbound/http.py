"""The job service's HTTP APIs, two bare ASGI apps mounted on the service's port (decision 0085).

**Jobman API** under ``/jobman-service/api/v1`` (EUCAIM/jobman ``src/webservice/route``; the FEM client's
``launcher.json`` calls these paths), ``Authorization: Bearer <token>`` with a token from EUCAIM_JOBS_TOKEN_FILE
(``name:token`` lines, as the federated search's file); the token's name is the principal whose grants count:

- ``POST /jobs`` submit (SubmitProps) → ``{"jobName"}``; ``GET /jobs`` the caller's jobs (Page<JobInfo>);
- ``GET /jobs/{name}`` the report (JobDetails); ``GET /jobs/{name}/logs`` → ``{"stdOut"}`` (the log once released);
- ``DELETE /jobs/{name}`` cancel (the process is killed);
- ``GET /jobs/{name}/outputs`` released files with their SHA-256; ``GET /jobs/{name}/outputs/{file}`` one of them,
  with ``Repr-Digest: sha-256=:<base64>:`` (RFC 9530) and ``X-Checksum-Sha256: <hex>``;
- ``GET /images`` allowed tools (Page<ImageRepo>); ``GET /resources-flavors`` the flavours.

Errors are Jobman's ErrorResponse ``{"message", "status"}``: 400 malformed, 401 no or wrong token, 403 no open
grant, 404 unknown, 409 conflict, 413 body too large, 429 too many unfinished jobs, 503 audit log unavailable.

**Review API** under ``/review/v1`` for data holders (``eucaim-node job ...``), with a token from
EUCAIM_JOBS_REVIEW_TOKEN_FILE (researchers' tokens never open it): ``GET /jobs``, ``GET /jobs/{uid}``,
``GET /jobs/{uid}/outputs/{file}`` (the file's bytes, to read before deciding),
``POST /jobs/{uid}/release`` ``{"files": [...], "despiteFindings": false}``, ``POST /jobs/{uid}/reject``
``{"files": [...], "reason": "..."}``.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from eucaim_node.runtime.body import UnreadableBody, read_json_body

from ...core.catalogue import images_page
from ...core.jobs import JobError, JobService
from ...core.model import page, report, summary

#: A user's job list holds their most recent jobs, at most this many (Jobman pages; the FEM reads the first page).
LIST_LIMIT = 500

log = logging.getLogger("eucaim_node.jobs.http")

JOBMAN_PREFIX = "/jobman-service/api/v1"
REVIEW_PREFIX = "/review/v1"
MAX_BODY = 64 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _send(send: Send, status: int, body: bytes, content_type: str,
                headers: Mapping[str, str] | None = None) -> None:
    head = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, status: int, value: Any, headers: Mapping[str, str] | None = None) -> None:
    await _send(send, status, json.dumps(value).encode(), "application/json", headers)


async def _error(send: Send, status: int, message: str) -> None:
    headers = {"www-authenticate": 'Bearer realm="eucaim-node jobs"'} if status == 401 else None
    await _json(send, status, {"message": message, "status": status}, headers)


def _bearer(scope: Scope, tokens: Mapping[str, str]) -> str | None:
    headers = dict(scope.get("headers", ()))
    scheme, _, secret = headers.get(b"authorization", b"").decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    for token, name in tokens.items():
        if hmac.compare_digest(secret.strip().encode(), token.encode()):
            return name
    return None


async def _body(scope: Scope, receive: Receive) -> Any:
    headers = dict(scope.get("headers", ()))
    if b"application/json" not in headers.get(b"content-type", b"").lower():
        raise JobError(415, "the body must be JSON (Content-Type: application/json)")
    try:
        return await read_json_body(headers.get(b"content-length", b"").decode("latin-1"), receive, MAX_BODY)
    except UnreadableBody as exc:
        raise JobError(exc.status, str(exc)) from None


Handler = Callable[..., Awaitable[None]]


class _Api:
    """Routing by (method, path pattern) under a prefix; every handler runs behind the token check."""

    routes: list[tuple[str, re.Pattern[str], str]] = []
    prefix = ""
    realm = ""

    def __init__(self, service: JobService, tokens: Mapping[str, str]) -> None:
        self.service, self.tokens = service, dict(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"][len(self.prefix):]
        method = scope["method"]
        allowed = []
        for route_method, pattern, name in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            principal = _bearer(scope, self.tokens)
            if principal is None:
                await _error(send, 401, f"a valid 'Authorization: Bearer <token>' is required ({self.realm})")
                return
            params = {k: unquote(v) for k, v in match.groupdict().items()}
            try:
                await getattr(self, name)(principal, scope, receive, send, **params)
            except JobError as refusal:
                await _error(send, refusal.status, str(refusal))
            except Exception:
                log.exception("request failed", extra={"path": path[:200], "method": method})
                await _error(send, 503, "the job service could not answer; try again later")
            return
        if allowed:
            await _error(send, 405, f"use {', '.join(sorted(set(allowed)))}")
        else:
            await _error(send, 404, "no such resource")


_NAME = r"(?P<name>[^/]+)"
_UID = r"(?P<uid>[0-9a-f-]{36})"


class JobmanApi(_Api):
    prefix = JOBMAN_PREFIX
    realm = "EUCAIM_JOBS_TOKEN_FILE"
    routes = [
        ("POST", re.compile(r"/jobs/?"), "submit"),
        ("GET", re.compile(r"/jobs/?"), "list_jobs"),
        ("GET", re.compile(rf"/jobs/{_NAME}/?"), "details"),
        ("DELETE", re.compile(rf"/jobs/{_NAME}/?"), "delete"),
        ("GET", re.compile(rf"/jobs/{_NAME}/logs/?"), "logs"),
        ("GET", re.compile(rf"/jobs/{_NAME}/outputs/?"), "outputs"),
        ("GET", re.compile(rf"/jobs/{_NAME}/outputs/(?P<file>.+)"), "download"),
        ("GET", re.compile(r"/images/?"), "images"),
        ("GET", re.compile(r"/resources-flavors/?"), "flavours"),
    ]

    async def submit(self, principal: str, scope: Scope, receive: Receive, send: Send) -> None:
        answer = await self.service.submit(principal, await _body(scope, receive))
        await _json(send, 200, answer)

    async def list_jobs(self, principal: str, scope: Scope, receive: Receive, send: Send) -> None:
        jobs = await self.service.store.recent(LIST_LIMIT, owner=principal)
        await _json(send, 200, page([summary(j) for j in jobs]))

    async def details(self, principal: str, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        await _json(send, 200, report(await self.service.job(principal, name), self.service.server_name))

    async def delete(self, principal: str, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        await self.service.cancel(principal, name)
        await _json(send, 200, {"message": f"job {name} cancelled", "status": 200})

    async def logs(self, principal: str, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        await _json(send, 200, {"stdOut": await self.service.logs(principal, name)})

    async def outputs(self, principal: str, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        data = await self.service.released_list(principal, name)
        await _json(send, 200, page(data))

    async def download(self, principal: str, scope: Scope, receive: Receive, send: Send, name: str,
                       file: str) -> None:
        path, sha256 = await self.service.released_output(principal, name, file)
        body = await asyncio.to_thread(Path(path).read_bytes)
        digest = base64.b64encode(bytes.fromhex(sha256)).decode()
        await _send(send, 200, body, "application/octet-stream",
                    {"repr-digest": f"sha-256=:{digest}:", "x-checksum-sha256": sha256,
                     "content-disposition": f'attachment; filename="{Path(file).name}"'})

    async def images(self, principal: str, scope: Scope, receive: Receive, send: Send) -> None:
        await _json(send, 200, images_page(self.service.tools))

    async def flavours(self, principal: str, scope: Scope, receive: Receive, send: Send) -> None:
        data = [f.describe() for f in self.service.flavours.values()]
        await _json(send, 200, page(data))


class ReviewApi(_Api):
    prefix = REVIEW_PREFIX
    realm = "EUCAIM_JOBS_REVIEW_TOKEN_FILE"
    routes = [
        ("GET", re.compile(r"/jobs/?"), "list_jobs"),
        ("GET", re.compile(rf"/jobs/{_UID}/?"), "job"),
        ("GET", re.compile(rf"/jobs/{_UID}/outputs/(?P<file>.+)"), "read_output"),
        ("POST", re.compile(rf"/jobs/{_UID}/release/?"), "release"),
        ("POST", re.compile(rf"/jobs/{_UID}/reject/?"), "reject"),
    ]

    async def list_jobs(self, reviewer: str, scope: Scope, receive: Receive, send: Send) -> None:
        jobs = await self.service.store.recent(200)
        await _json(send, 200, [_review_summary(j) for j in jobs])

    async def job(self, reviewer: str, scope: Scope, receive: Receive, send: Send, uid: str) -> None:
        job = await self.service.for_review(uid)
        await _json(send, 200, {**_review_summary(job), "report": report(job, self.service.server_name),
                                "outputs": sorted((_output(o) for o in job.outputs.values()), key=lambda o: o["name"])})

    async def read_output(self, reviewer: str, scope: Scope, receive: Receive, send: Send, uid: str, file: str) -> None:
        """The bytes of one output as it lies in the sandbox (the reviewer reads what they decide on)."""
        body = await self.service.output_bytes(uid, file)
        await _send(send, 200, body, "application/octet-stream")

    async def _decide(self, reviewer: str, scope: Scope, receive: Receive, send: Send, uid: str, *,
                      release: bool) -> None:
        body = await _body(scope, receive)
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise JobError(400, 'the body must be {"files": ["name", ...]}')
        operator = dict(scope.get("headers", ())).get(b"x-eucaim-operator", b"").decode("latin-1")[:100]
        decided = await self.service.decide(
            reviewer, uid, files, release=release, reason=str(body.get("reason", "")),
            despite_findings=body.get("despiteFindings") is True, operator=operator or None)
        await _json(send, 200, [_output(o) for o in decided])

    async def release(self, reviewer: str, scope: Scope, receive: Receive, send: Send, uid: str) -> None:
        await self._decide(reviewer, scope, receive, send, uid, release=True)

    async def reject(self, reviewer: str, scope: Scope, receive: Receive, send: Send, uid: str) -> None:
        await self._decide(reviewer, scope, receive, send, uid, release=False)


def _review_summary(job: Any) -> dict[str, Any]:
    return {"uid": job.uid, "name": job.name, "owner": job.owner, "state": str(job.state), "tool": job.tool,
            "datasets": job.datasets, "outputs": len(job.outputs),
            "pending": sum(1 for o in job.outputs.values() if o["decision"] == "pending")}


def _output(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: record.get(k) for k in ("name", "size", "sha256", "findings", "decision", "reviewer", "reason")}
    decided = record.get("decided_at")
    out["decidedAt"] = decided.isoformat() if decided is not None else None
    return out
