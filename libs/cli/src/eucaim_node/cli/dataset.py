"""`eucaim-node dataset ...`: define, follow, release, publish, invalidate, verify and grant Tier 3 datasets.

The command reads the catalogue and the datasets (its MongoDB user only reads) and sends each change as a
``DatasetCommand`` to the materialiser, the datasets' one writer, then prints the outcome the materialiser recorded
(decision 0080). Bad input ends with one line on standard error and a non-zero exit: 2 for what the operator typed
(unknown ID, illegal transition, expired grant, duplicate name, unreadable file), 1 when the node did not answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from eucaim_node.catalogue.settings import CollectionsSettings
from eucaim_node.runtime import KafkaSettings
from eucaim_node.store import MongoSettings

from .operator import actor, fail
from .search import EnvFile, load

app = typer.Typer(help="Tier 3 datasets: frozen, versioned, materialised study lists (docs/datasets.md).",
                  no_args_is_help=True)

Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the materialiser's answer.")]


class DatasetCliSettings(KafkaSettings, MongoSettings, CollectionsSettings):
    pass


def _run(coro) -> Any:
    try:
        return asyncio.run(coro)
    except typer.Exit:
        raise
    except Exception as exc:
        raise fail(f"{type(exc).__name__}: {exc}", 1) from None


class _Session:
    """The CLI's MongoDB connection (read-only user) and the dataset store over it."""

    def __init__(self, settings: DatasetCliSettings) -> None:
        from eucaim_node.datasets import MongoDatasetStore
        from eucaim_node.store import connect

        self.settings = settings
        self.client, self.db = connect(settings, app_name="cli")
        self.store = MongoDatasetStore(self.db)

    async def close(self) -> None:
        await self.client.close()

    async def dataset(self, dataset_id: str):
        from eucaim_node.datasets import is_dataset_id

        if not is_dataset_id(dataset_id):
            raise fail(f"{dataset_id!r} is not a dataset ID (a UUID)")
        found = await self.store.get(dataset_id)
        if found is None:
            raise fail(f"unknown dataset {dataset_id}")
        return found

    async def send(self, command, wait_seconds: float) -> dict[str, Any]:
        """Publish the command and wait for the outcome the materialiser records under its event ID."""
        from eucaim_node.runtime import publish_events
        from eucaim_node.store import collections as names

        await publish_events(self.settings, command)
        deadline = time.monotonic() + wait_seconds
        outcomes = self.db[names.DATASET_COMMANDS]
        while time.monotonic() < deadline:
            outcome = await outcomes.find_one({"_id": str(command.event_id)})
            if outcome is not None:
                return outcome
            await asyncio.sleep(0.2)
        raise fail(f"command {command.event_id} was sent but the materialiser did not answer within {wait_seconds:.0f} s; "
                   "it applies it when it runs (see `eucaim-node dataset show`)", 1)


def _command(kind: str, dataset_id: str, **fields: Any):
    from eucaim_node.events import DatasetCommand

    return DatasetCommand.create(cause=f"cli:{kind}:{uuid.uuid4()}", producer="cli", command=kind, actor=actor(),
                                 dataset_id=dataset_id, **fields)


def _finish(outcome: dict[str, Any]) -> None:
    if not outcome["ok"]:
        raise fail(outcome["message"])
    typer.echo(outcome["message"])


async def _with_session(settings: DatasetCliSettings, work) -> Any:
    session = _Session(settings)
    try:
        return await work(session)
    finally:
        await session.close()


def _read_text(path: Path) -> str:
    try:
        return sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None


def _study_list(text: str, path: Path) -> list[str]:
    """A JSON array of StudyInstanceUIDs, or one per line."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise fail(f"{path} is not valid JSON: {exc}") from None
        if not all(isinstance(v, str) for v in value):
            raise fail(f"{path}: expected a JSON array of StudyInstanceUIDs")
        return value
    return [line.strip() for line in stripped.splitlines() if line.strip() and not line.startswith("#")]


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="The dataset's name (unique).")],
    query: Annotated[Path | None, typer.Option("--query", help="JSON file with a federated-search query "
                                                                "({\"ast\": ...}, as the search endpoint takes).")] = None,
    studies: Annotated[Path | None, typer.Option("--studies", help="File listing research StudyInstanceUIDs "
                                                                    "(JSON array or one per line).")] = None,
    project: Annotated[str | None, typer.Option("--project")] = None,
    description: Annotated[str, typer.Option("--description")] = "",
    licence: Annotated[str | None, typer.Option("--licence", help="e.g. an SPDX ID or a licence URL.")] = None,
    purpose: Annotated[str | None, typer.Option("--purpose")] = None,
    wait: Annotated[float, typer.Option("--wait", help="Also wait up to this many seconds for the "
                                                       "materialisation to finish (0: do not wait).")] = 0.0,
    timeout: Timeout = 30.0,
    env_file: EnvFile = None,
) -> None:
    """Define a dataset from a query or a study list, resolved now into a frozen list; materialised in the background."""
    from eucaim_node.catalogue.search import QueryCompiler, QueryError
    from eucaim_node.datasets import new_dataset_id
    from eucaim_node.datasets.resolve import ResolutionError, resolve_query, resolve_studies
    from eucaim_node.events import DatasetDefinition, DatasetStudy

    if (query is None) == (studies is None):
        raise fail("give exactly one of --query FILE or --studies FILE")
    name = name.strip()
    if not name:
        raise fail("the name is empty")
    source = query if query is not None else studies
    assert source is not None
    text = _read_text(source)
    compiled = None
    if query is not None:
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise fail(f"{query} is not valid JSON: {exc}") from None
        body = body if isinstance(body, dict) and "ast" in body else {"ast": body}
        try:
            compiled = QueryCompiler().compile_request(body)
        except QueryError as exc:
            raise fail(f"query not accepted: {exc}") from None
    settings = load(DatasetCliSettings, env_file)
    collections = [c.id for c in settings.collections_config().collections]

    async def work(session: _Session) -> None:
        if [d for d in await session.store.by_name(name) if not d.deleted]:
            raise fail(f"a dataset named {name!r} exists already; choose another name")
        try:
            if compiled is not None:
                refs = await resolve_query(session.db, compiled.filter, collections)
                provenance = {"kind": "query", "ast": body["ast"], "resolved_at": _now(),
                              "query_sha256": hashlib.sha256(compiled.canonical.encode()).hexdigest()}
            else:
                refs = await resolve_studies(session.db, _study_list(text, source), collections)
                provenance = {"kind": "studies", "resolved_at": _now()}
        except ResolutionError as exc:
            raise fail(str(exc)) from None
        definition = DatasetDefinition(
            name=name, description=description, project=project, licence=licence, purpose=purpose,
            provenance=json.dumps(provenance, sort_keys=True),
            studies=tuple(DatasetStudy(**r.model_dump()) for r in refs))
        dataset_id = new_dataset_id()
        _finish(await session.send(_command("define", dataset_id, definition=definition), timeout))
        typer.echo(f"id: {dataset_id}")
        if wait > 0:
            await _wait_materialised(session, dataset_id, wait)

    _run(_with_session(settings, work))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def _wait_materialised(session: _Session, dataset_id: str, wait: float) -> None:
    from eucaim_node.datasets import Creation

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        dataset = await session.store.get(dataset_id)
        if dataset is not None and dataset.creation is Creation.DONE:
            hashes = dataset.hashes
            typer.echo(f"materialised: {hashes.files} files, {hashes.bytes} bytes; images SHA3-256 {hashes.images}")
            return
        if dataset is not None and dataset.creation is Creation.ERROR:
            raise fail(f"materialisation failed: {dataset.creation_error}", 1)
        await asyncio.sleep(0.3)
    raise fail(f"dataset {dataset_id} is not materialised after {wait:.0f} s (still running; see `dataset show`)", 1)


def _label(dataset) -> str:
    return f"invalidated ({dataset.invalidation_reason})" if dataset.invalidated else dataset.state.value


@app.command("list")
def list_command(env_file: EnvFile = None) -> None:
    """Every dataset version: ID, version, state, creation, studies, subjects, name."""
    settings = load(DatasetCliSettings, env_file)

    async def work(session: _Session) -> None:
        rows = await session.store.list()
        typer.echo(f"{'ID':36}  {'V':>2}  {'STATE':24}  {'CREATION':8}  {'STUDIES':>7}  {'SUBJECTS':>8}  NAME")
        for d in rows:
            if d.deleted:
                continue
            typer.echo(f"{d.id:36}  {d.version:>2}  {_label(d):24}  {d.creation.value:8}  {len(d.studies):>7}  "
                       f"{len(d.subjects):>8}  {d.name}")

    _run(_with_session(settings, work))


@app.command("show")
def show(dataset_id: Annotated[str, typer.Argument(help="Dataset ID.")], env_file: EnvFile = None) -> None:
    """One dataset version: its definition, state, versions, hashes and access grants."""
    settings = load(DatasetCliSettings, env_file)

    async def work(session: _Session) -> None:
        d = await session.dataset(dataset_id)
        grants = await session.store.grants(dataset_id=d.id)
        now = datetime.now(UTC)
        lines = [f"id: {d.id}", f"name: {d.name}", f"version: {d.version}", f"state: {_label(d)}",
                 f"creation: {d.creation.value}" + (f" ({d.creation_error})" if d.creation_error else ""),
                 f"previous: {d.previous_id or '-'}", f"next: {d.next_id or '-'}", f"project: {d.project or '-'}",
                 f"licence: {d.licence or '-'}", f"author: {d.author}", f"created: {d.created_at.isoformat()}",
                 f"provenance: {json.dumps(d.provenance, sort_keys=True)}",
                 f"studies: {len(d.studies)}  subjects: {len(d.subjects)}  collections: {', '.join(d.collections)}"]
        if d.hashes:
            lines += [f"files: {d.hashes.files}  bytes: {d.hashes.bytes}",
                      f"hash index (SHA3-256): {d.hashes.index}", f"hash images (SHA3-256): {d.hashes.images}",
                      f"hash clinical data (SHA3-256): {d.hashes.clinical}"]
        for g in grants:
            status = "open" if g.open_at(now) else ("closed" if g.closed_at else "not open now")
            lines.append(f"grant {g.id}: {g.grantee} {g.valid_from.isoformat()} .. {g.valid_until.isoformat()} "
                         f"by {g.granted_by} [{status}]")
        typer.echo("\n".join(lines))

    _run(_with_session(settings, work))


def _act(kind: str, dataset_id: str, reason: str | None, timeout: float, env_file: Path | None) -> None:
    from eucaim_node.datasets import Act, IllegalTransition, plan

    settings = load(DatasetCliSettings, env_file)

    async def work(session: _Session) -> None:
        dataset = await session.dataset(dataset_id)
        try:
            plan(dataset, Act[kind.upper()], at=datetime.now(UTC), reason=reason)
        except IllegalTransition as exc:
            raise fail(str(exc)) from None
        _finish(await session.send(_command(kind, dataset.id, reason=reason), timeout))

    _run(_with_session(settings, work))


Reason = Annotated[str | None, typer.Option("--reason", help="Why (required to invalidate).")]
DatasetId = Annotated[str, typer.Argument(help="Dataset ID.")]


@app.command("release")
def release(dataset_id: DatasetId, timeout: Timeout = 30.0, env_file: EnvFile = None) -> None:
    """Release a materialised draft: from now on this version never changes."""
    _act("release", dataset_id, None, timeout, env_file)


@app.command("publish")
def publish(dataset_id: DatasetId, timeout: Timeout = 30.0, env_file: EnvFile = None) -> None:
    """Publish a released version (listed in the HealthDCAT-AP catalogue)."""
    _act("publish", dataset_id, None, timeout, env_file)


@app.command("invalidate")
def invalidate(dataset_id: DatasetId, reason: Reason = None, timeout: Timeout = 30.0, env_file: EnvFile = None) -> None:
    """Invalidate a version (nobody may use it) with a reason; reversible with `reactivate`."""
    _act("invalidate", dataset_id, reason, timeout, env_file)


@app.command("reactivate")
def reactivate(dataset_id: DatasetId, timeout: Timeout = 30.0, env_file: EnvFile = None) -> None:
    """Undo an invalidation (not one caused by a consent withdrawal: its files are gone)."""
    _act("reactivate", dataset_id, None, timeout, env_file)


@app.command("delete")
def delete(dataset_id: DatasetId, timeout: Timeout = 30.0, env_file: EnvFile = None) -> None:
    """Delete a draft or a failed creation and its files; refused while an access grant is open."""
    from eucaim_node.datasets import IllegalTransition, open_grant_count
    from eucaim_node.datasets.lifecycle import may_delete

    settings = load(DatasetCliSettings, env_file)

    async def work(session: _Session) -> None:
        dataset = await session.dataset(dataset_id)
        try:
            may_delete(dataset, await open_grant_count(session.store, dataset.id))
        except IllegalTransition as exc:
            raise fail(str(exc)) from None
        _finish(await session.send(_command("delete", dataset.id), timeout))

    _run(_with_session(settings, work))


def _date(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is not a date (YYYY-MM-DD or an ISO 8601 time)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("grant")
def grant(
    dataset_id: DatasetId,
    to: Annotated[str, typer.Option("--to", help="User name, or project:NAME for a project.")],
    until: Annotated[str, typer.Option("--until", help="End of access (exclusive): YYYY-MM-DD or ISO 8601.")],
    valid_from: Annotated[str | None, typer.Option("--from", help="Start of access (default: now).")] = None,
    timeout: Timeout = 30.0,
    env_file: EnvFile = None,
) -> None:
    """Grant a user or a project access to a dataset, from now (or --from) until a date."""
    from eucaim_node.events import DatasetGrantRequest

    start = _date(valid_from, "--from") if valid_from else datetime.now(UTC)
    end = _date(until, "--until")
    if end <= max(start, datetime.now(UTC)):
        raise fail(f"the grant would be expired already (--until {until})")
    if not to.strip() or any(ch.isspace() for ch in to.strip()):
        raise fail("--to must be a user name or project:NAME, without spaces")
    settings = load(DatasetCliSettings, env_file)

    async def work(session: _Session) -> None:
        dataset = await session.dataset(dataset_id)
        if dataset.invalidated or dataset.deleted:
            raise fail(f"dataset {dataset.id} is {_label(dataset) if not dataset.deleted else 'deleted'}: no new access")
        request = DatasetGrantRequest(grant_id=str(uuid.uuid4()), grantee=to.strip(), valid_from=start, valid_until=end)
        _finish(await session.send(_command("grant", dataset.id, grant=request), timeout))

    _run(_with_session(settings, work))


@app.command("revoke")
def revoke(
    grant_id: Annotated[str, typer.Argument(help="Grant ID (`dataset show` lists them).")],
    timeout: Timeout = 30.0,
    env_file: EnvFile = None,
) -> None:
    """Close an access grant now."""
    settings = load(DatasetCliSettings, env_file)

    async def work(session: _Session) -> None:
        found = await session.store.get_grant(grant_id)
        if found is None:
            raise fail(f"unknown grant {grant_id}")
        if found.closed_at is not None:
            raise fail(f"grant {grant_id} is already closed ({found.closed_at.isoformat()})")
        _finish(await session.send(_command("revoke", found.dataset_id, grant_id=found.id), timeout))

    _run(_with_session(settings, work))


@app.command("verify")
def verify(dataset_id: DatasetId, env_file: EnvFile = None) -> None:
    """Recompute every file's digest and the SHA3-256 aggregates; name the first file that differs (exit 1)."""
    from eucaim_node.datasets.layout import DatasetRoot
    from eucaim_node.datasets.settings import DatasetRootSettings

    settings = load(DatasetCliSettings, env_file)
    root = DatasetRoot(load(DatasetRootSettings, env_file).dataset_root)

    async def work(session: _Session):
        return await session.dataset(dataset_id)

    dataset = _run(_with_session(settings, work))
    refusal, verdict = verify_materialised(root, dataset)
    if refusal is not None:
        raise fail(refusal)
    if not verdict.ok:
        typer.echo(f"FAILED: {verdict.first_difference}: {verdict.detail}", err=True)
        raise typer.Exit(1)
    typer.echo(f"OK: dataset {dataset.id} verified ({verdict.detail}); images SHA3-256 {dataset.hashes.images}")


def verify_materialised(root, dataset):
    """(why it cannot be verified, None) or (None, the integrity verdict of its files against its recorded digests);
    also used by `eucaim-node readiness`."""
    from eucaim_node.datasets import Creation
    from eucaim_node.datasets.integrity import verify as check
    from eucaim_node.datasets.layout import index_entries

    if dataset.creation is not Creation.DONE or dataset.hashes is None:
        return f"dataset {dataset.id} is not materialised (creation {dataset.creation.value})", None
    if dataset.invalidated and not root.dataset_dir(dataset.id).exists():
        return f"dataset {dataset.id} is invalidated ({dataset.invalidation_reason}) and its files are removed", None
    return None, check(root.dataset_dir(dataset.id), root.bag_dir(dataset.id), dataset.hashes, index_entries(dataset))
