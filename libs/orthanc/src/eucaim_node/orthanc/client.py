"""The node's client of Orthanc's REST API over orthanc-api-client: :class:`OrthancSession`, synchronous, for a
process without an event loop (the anonymisation service's worker processes, decision 0132), and
:class:`OrthancClient`, its async facade, so handlers never block the event loop. Errors are mapped to the node's
own exceptions in one place, :meth:`OrthancSession.call`."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import requests
from orthanc_api_client import OrthancApiClient
from orthanc_api_client import exceptions as api_errors

from .settings import OrthancEndpoint

T = TypeVar("T")


class OrthancUnavailable(ConnectionError):
    """Orthanc cannot be reached, timed out, refused our credentials or answered 502/503/504.

    A ``ConnectionError``: the delivery layer retries it instead of dead-lettering the message.
    """


class OrthancNotFound(LookupError):
    """The resource does not exist (any more) in this Orthanc."""


class OrthancAnswerTooLarge(ValueError):
    """An answer announced or delivered more bytes than the caller allowed; what was read of it is not usable.

    Not a ``ConnectionError``: retrying the same request would only fetch the same oversized answer again.
    """


@dataclass(frozen=True)
class Change:
    seq: int
    change_type: str
    resource_type: str
    resource_id: str


@dataclass(frozen=True)
class ChangesPage:
    changes: tuple[Change, ...]
    last: int
    done: bool


@dataclass(frozen=True)
class StoredInstance:
    instance_id: str
    study_id: str
    series_id: str
    status: str  # "Success" or "AlreadyStored"


class OrthancSession:
    """One Orthanc over one keep-alive HTTP session, synchronous. Every request goes through :meth:`call`, which
    maps the client library's errors to :class:`OrthancUnavailable` and :class:`OrthancNotFound`."""

    def __init__(self, endpoint: OrthancEndpoint, *, timeout: float = 60.0) -> None:
        self.endpoint = endpoint
        self._timeout = timeout
        self.api = OrthancApiClient(endpoint.url, user=endpoint.username, pwd=endpoint.password)
        # The library retries 502/503 (urllib3), then urllib3 raises RetryError, which the library does not
        # translate: its get() returns None. Answering the last response instead lets call() map the status.
        session = self.api._http_session
        adapter = session.get_adapter(endpoint.url)
        adapter.max_retries = adapter.max_retries.new(raise_on_status=False)
        # requests reads the environment (proxies and NO_PROXY, CA bundle, ~/.netrc) again on every request: in the
        # anonymisation workers' profile, ~6 % of an instance's time (decision 0132). Read once here, same result.
        session.proxies.update(requests.utils.get_environ_proxies(endpoint.url))
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or session.verify
        session.auth = session.auth or requests.utils.get_netrc_auth(endpoint.url)
        session.trust_env = False

    def __repr__(self) -> str:
        return f"OrthancSession({self.endpoint.url})"

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        kwargs.setdefault("timeout", self._timeout)
        try:
            return fn(*args, **kwargs)
        except (api_errors.ConnectionError, api_errors.TimeoutError) as exc:
            raise OrthancUnavailable(f"{self.endpoint.url}: {exc.msg}") from None
        except api_errors.NotAuthorized as exc:
            raise OrthancUnavailable(f"{self.endpoint.url}: credentials refused (check the username and password file)") from exc
        except api_errors.ResourceNotFound as exc:
            raise OrthancNotFound(str(exc.url)) from None
        except api_errors.HttpError as exc:
            if exc.http_status_code in (502, 503, 504):
                raise OrthancUnavailable(f"{self.endpoint.url}: HTTP {exc.http_status_code}") from None
            raise

    def instance_file(self, instance_id: str) -> bytes:
        # Asked for as is: with HttpCompressionEnabled Orthanc would otherwise gzip every file on the fly (and
        # we unzip it), the largest CPU cost of the pipeline (docs/benchmarks.md, decision 0090).
        return self.call(self.api.get_binary, f"instances/{instance_id}/file", headers={"Accept-Encoding": "identity"})

    def store(self, data: bytes) -> StoredInstance:
        """Store one Part-10 file (idempotent: storing the same SOP instance again overwrites it)."""
        body = self.call(self.api.post, "instances", data=data, headers={"Content-Type": "application/dicom"}).json()
        return StoredInstance(body["ID"], body["ParentStudy"], body["ParentSeries"], body["Status"])


class OrthancClient:
    """One Orthanc instance. Every method runs the blocking :class:`OrthancSession` in a worker thread."""

    def __init__(self, endpoint: OrthancEndpoint, *, timeout: float = 60.0) -> None:
        self.endpoint = endpoint
        self._session = OrthancSession(endpoint, timeout=timeout)
        self._api = self._session.api

    def __repr__(self) -> str:
        return f"OrthancClient({self.endpoint.url})"

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(functools.partial(self._session.call, fn, *args, **kwargs))

    async def get_json(self, path: str) -> Any:
        return await self._call(self._api.get_json, path)

    async def system(self) -> dict[str, Any]:
        return await self.get_json("system")

    async def changes(self, since: int, limit: int = 100) -> ChangesPage:
        """One page of ``/changes`` after sequence number ``since`` (Orthanc may have deleted old rows)."""
        page = await self.get_json(f"changes?since={int(since)}&limit={int(limit)}")
        return ChangesPage(
            changes=tuple(
                Change(seq=c["Seq"], change_type=c["ChangeType"], resource_type=c["ResourceType"], resource_id=c["ID"])
                for c in page["Changes"]
            ),
            last=int(page["Last"]),
            done=bool(page["Done"]),
        )

    async def study(self, study_id: str) -> dict[str, Any]:
        return await self.get_json(f"studies/{study_id}")

    async def study_ids(self) -> list[str]:
        return await self.get_json("studies")

    async def series(self, series_id: str) -> dict[str, Any]:
        return await self.get_json(f"series/{series_id}")

    async def study_instance_ids(self, study_id: str) -> list[str]:
        return [i["ID"] for i in await self.get_json(f"studies/{study_id}/instances")]

    async def instance_tags(self, instance_id: str) -> dict[str, Any]:
        """Tags of one instance, by keyword (``/simplified-tags``); pixel data excluded by Orthanc."""
        return await self.get_json(f"instances/{instance_id}/simplified-tags")

    async def series_instances_tags(self, series_id: str) -> dict[str, dict[str, Any]]:
        """Every instance's tags by keyword, keyed by instance ID, in one request (``/series/{id}/instances-tags``)."""
        return await self.get_json(f"series/{series_id}/instances-tags?simplify")

    async def decodes(self, instance_id: str) -> bool:
        """Whether Orthanc can decode the instance's (first frame's) pixel data: it answers the decoded frame as a
        NumPy array (``/frames/0/numpy``, Orthanc ≥ 1.10) or refuses (400/415/500 for a transfer syntax it has no
        codec for, or corrupt pixel data). Not ``/preview``: that renders and PNG-compresses every image, which
        made the research Orthanc the pipeline's largest CPU cost (decision 0090); checked on Orthanc 1.10.1 that
        both refuse the same instances (JPEG 2000 and JPEG with corrupt fragments, truncated native data)."""
        try:
            await self._call(self._api.get_binary, f"instances/{instance_id}/frames/0/numpy",
                             headers={"Accept-Encoding": "identity"})
        except api_errors.HttpError as exc:
            if exc.http_status_code in (400, 415, 500):
                return False
            raise
        return True

    async def instance_file(self, instance_id: str) -> bytes:
        return await asyncio.to_thread(self._session.instance_file, instance_id)

    async def download_archive(self, level: Literal["series", "studies"], resource_id: str, target: Path, *,
                               limit: int | None = None) -> int:
        """Stream the ZIP of every DICOM file of a series or study into ``target``; return its size in bytes.

        ``GET /series/{id}/archive`` and ``GET /studies/{id}/archive`` (Orthanc Book, REST API reference, "Create
        ZIP archive"; both in Orthanc 1.10 and 1.12): one request instead of one per instance. The body is written
        as it arrives (chunks of 1 MiB), never held in memory: a study can be gigabytes. Asked for as is (no gzip
        around the ZIP). A connection that drops mid-way raises :class:`OrthancUnavailable`; an answer cut short in
        any other way leaves a file that is not a valid ZIP, which the reader must detect (its central directory
        is at the end). With ``limit``, an answer that announces more bytes is refused before its body is read, and
        one that delivers more stops being read at the chunk that crosses it (``target`` never holds more than
        ``limit`` bytes): :class:`OrthancAnswerTooLarge` either way."""
        return await self._call(self._stream_to_file, f"{level}/{resource_id}/archive", target, limit=limit)

    def _stream_to_file(self, path: str, target: Path, *, timeout: float, limit: int | None = None) -> int:
        written = 0
        try:
            with self._api.get(path, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"}) as answer:
                announced = answer.headers.get("Content-Length", "")
                if limit is not None and announced.isdigit() and int(announced) > limit:
                    raise OrthancAnswerTooLarge(f"{path}: {announced} bytes announced, at most {limit} allowed")
                with open(target, "wb") as handle:
                    for chunk in answer.iter_content(chunk_size=1 << 20):
                        written += len(chunk)
                        if limit is not None and written > limit:
                            # Leaving the block closes the response: the rest of the body is never read.
                            raise OrthancAnswerTooLarge(f"{path}: more than {limit} bytes, the most allowed")
                        handle.write(chunk)
        except requests.RequestException as exc:  # raised while reading the body, after the status was checked
            raise api_errors.ConnectionError(msg=f"{path}: the answer was cut short ({type(exc).__name__})") from None
        return written

    async def store(self, data: bytes) -> StoredInstance:
        """Store one Part-10 file (idempotent: storing the same SOP instance again overwrites it)."""
        return await asyncio.to_thread(self._session.store, data)

    async def find_study(self, study_instance_uid: str) -> str | None:
        """Orthanc ID of the study with this StudyInstanceUID, or None."""
        found = await self._call(self._api.post, "tools/lookup", data=study_instance_uid)
        for item in found.json():
            if item.get("Type") == "Study":
                return item["ID"]
        return None

    async def delete_study(self, study_id: str) -> None:
        try:
            await self._call(self._api.delete, f"studies/{study_id}")
        except OrthancNotFound:
            pass
