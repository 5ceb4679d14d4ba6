"""The job core: submission with its access checks, the run, cancellation, the report, and the egress review.

Every step is an audit record (an ``AccessRecorded`` event, appended to the ledger by the audit service):
``job-access-check`` for each dataset at submission and again at start (outcome success or denied);
``USE_DATASETS`` for an accepted submission (the EUCAIM tracing-service's action, as the datasets library
records it: user, datasets, tool, image, command line, flavour); ``job-start``, ``job-end``, ``job-cancel``; ``job-release`` (with the file's SHA-256) and
``job-reject`` for every review decision. A submission is answered only after its record is sent: a job that
cannot be recorded does not run (503).
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..ports import DatasetAccess, DuplicateJob, JobStore, Recorder, RunRequest, Runner, UnknownDataset
from .catalogue import Tool, command_file, file_digest
from .egress import LOG_NAME, ReviewRules, output_key, scan_outputs, sha256_file, subject_identifiers
from .model import FINAL_STATES, Flavour, Job, JobError, JobState, Submission, check_transition

log = logging.getLogger("eucaim_node.jobs")

#: EUCAIM/tracing-service (app/models/v2/common_types.py) action name of a use of datasets; the datasets library
#: records the same name (eucaim_node.datasets.audit), so one query finds every use.
USE_DATASETS = "USE_DATASETS"


@dataclass(frozen=True)
class JobLimits:
    max_running: int = 2
    max_jobs_per_owner: int = 20  # unfinished at once: a client in a loop cannot queue without end


class JobService:
    def __init__(self, *, store: JobStore, datasets: DatasetAccess, runner: Runner, record: Recorder,
                 tools: dict[str, Tool], flavours: dict[str, Flavour], default_flavour: str, work_dir: Path,
                 rules: ReviewRules, limits: JobLimits = JobLimits(), server_name: str = "eucaim-node",
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store, self.datasets, self.runner, self.record = store, datasets, runner, record
        self.tools, self.flavours, self.default_flavour = tools, flavours, default_flavour
        self.work_dir, self.rules, self.limits, self.server_name, self.clock = work_dir, rules, limits, server_name, clock
        self._slots = asyncio.Semaphore(limits.max_running)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel: dict[str, asyncio.Event] = {}

    # -- submission ----------------------------------------------------------------------------------------------

    async def submit(self, principal: str, body: Any) -> dict[str, Any]:
        """Jobman's ``POST .../jobs``: ``{"jobName": ...}`` once accepted and recorded (the run starts after)."""
        submission = self._parse(body)
        tool = self.tools.get(submission.image)
        if tool is None:
            raise JobError(400, f"image {submission.image!r} is not allowed on this node (GET .../images lists them)")
        flavour_name = submission.resources or self.default_flavour
        flavour = self.flavours.get(flavour_name)
        if flavour is None:
            raise JobError(400, f"unknown resources flavour {flavour_name!r}; known: {', '.join(sorted(self.flavours))}")
        args = submission.arguments()
        dataset_ids = submission.dataset_ids()
        name = submission.name_or_new()
        await self._check_access(principal, dataset_ids, stage="submit", job=name)
        if submission.dryRun:
            return {"jobName": name, "dryRun": True, "image": tool.ref, "args": args, "flavor": flavour.name}
        unfinished = [j for j in await self.store.unfinished() if j.owner == principal]
        if len(unfinished) >= self.limits.max_jobs_per_owner:
            raise JobError(429, f"{len(unfinished)} unfinished jobs already; wait for one to end")
        job = Job(uid=str(uuid.uuid4()), name=name, owner=principal, image=tool.ref, tool=tool.ref, args=args,
                  flavour=flavour.name, datasets=dataset_ids, created_at=self.clock())
        try:
            await self.store.insert(job)
        except DuplicateJob:
            raise JobError(409, f"you already have a job named {name!r}") from None
        try:
            await self.record(actor=_actor(principal), action=USE_DATASETS, target=",".join(dataset_ids),
                              outcome="success",
                              detail={"job": name, "job_uid": job.uid, "datasets": ",".join(dataset_ids),
                                      "tool": tool.ref, "image": tool.image or tool.digest,
                                      "command_line": shlex.join(args), "flavour": flavour.name})
        except Exception:
            job.state, job.errors = JobState.ERROR, ["the submission could not be recorded in the audit log"]
            job.finished_at = self.clock()
            await self.store.save(job)
            raise JobError(503, "the submission could not be recorded in the audit log; try again later") from None
        self._start_task(job)
        return {"jobName": name}

    @staticmethod
    def _parse(body: Any) -> Submission:
        if not isinstance(body, dict):
            raise JobError(400, "the body must be a JSON object (Jobman SubmitProps)")
        try:
            return Submission.model_validate(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "body"
            raise JobError(400, f"{where}: {error['msg']}") from None

    async def _check_access(self, principal: str, dataset_ids: list[str], *, stage: str, job: str) -> dict[str, Path]:
        """Each dataset must exist and ``principal`` must hold an open grant on it now; every check is recorded."""
        paths: dict[str, Path] = {}
        for dataset_id in dataset_ids:
            try:
                paths[dataset_id] = await self.datasets.resolve(dataset_id)
                allowed = await self.datasets.holds_open_grant(principal, dataset_id)
                reason = "open grant" if allowed else "no open grant"
            except UnknownDataset:
                allowed, reason = False, "unknown dataset"
            await self.record(actor=_actor(principal), action="job-access-check", target=dataset_id,
                              outcome="success" if allowed else "denied",
                              detail={"stage": stage, "job": job, "reason": reason})
            if not allowed:
                if reason == "unknown dataset":
                    raise JobError(404, f"no dataset {dataset_id} on this node")
                raise JobError(403, f"you hold no open grant on dataset {dataset_id}")
        return paths

    # -- the run -------------------------------------------------------------------------------------------------

    def _start_task(self, job: Job) -> None:
        self._cancel[job.uid] = asyncio.Event()
        task = asyncio.create_task(self._run(job), name=f"job-{job.uid}")
        self._tasks[job.uid] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.uid, None))

    async def _run(self, job: Job) -> None:
        try:
            async with self._slots:
                await self._run_in_slot(job)
        except Exception as exc:  # the node keeps serving whatever one job does
            log.exception("job failed in the node", extra={"job": job.uid})
            await self._finish(job, None, [f"internal error of the job service: {type(exc).__name__}"])
        finally:
            self._cancel.pop(job.uid, None)

    async def _run_in_slot(self, job: Job) -> None:
        cancelled = self._cancel[job.uid]
        if cancelled.is_set():
            return
        try:
            paths = await self._check_access(job.owner, job.datasets, stage="start", job=job.name)
        except JobError as refusal:
            await self._finish(job, None, [f"refused at start: {refusal}"], state=JobState.PENDING_ERROR)
            return
        tool = self.tools[job.tool]
        changed = _tool_changed(tool)
        if changed:
            await self._finish(job, None, [changed], state=JobState.PENDING_ERROR)
            return
        request = RunRequest(job.uid, tool, job.args, self.flavours[job.flavour], paths, self.work_dir / job.uid)
        plan = await asyncio.to_thread(self.runner.plan, request)
        check_transition(job.state, JobState.RUNNING)
        job.state, job.started_at = JobState.RUNNING, self.clock()
        job.mounts, job.env, job.command = plan.mounts, plan.env, plan.command
        await self.store.save(job)
        await self.record(actor="jobs", action="job-start", target=job.uid, outcome="success",
                          detail={"job": job.name, "owner": job.owner, "tool": job.tool, "flavour": job.flavour})
        result = await self.runner.run(request, plan, cancelled)
        await self._finish(job, result.exit_code, result.errors, request=request)

    async def _finish(self, job: Job, exit_code: int | None, errors: list[str], *,
                      state: JobState | None = None, request: RunRequest | None = None) -> None:
        if job.state in FINAL_STATES:
            return
        new_state = state or (JobState.SUCCESS if exit_code == 0 and not errors else JobState.ERROR)
        check_transition(job.state, new_state)
        job.state, job.exit_code, job.finished_at = new_state, exit_code, self.clock()
        job.errors = [*job.errors, *errors]
        if request is not None:
            identifiers: frozenset[str] = frozenset()
            for path in request.datasets.values():
                identifiers |= await asyncio.to_thread(subject_identifiers, path)
            job.outputs = await asyncio.to_thread(scan_outputs, request.sandbox, request.log, self.rules, identifiers)
        await self.store.save(job)
        flagged = sum(1 for o in job.outputs.values() if o["findings"])
        await self.record(actor="jobs", action="job-end", target=job.uid,
                          outcome="success" if new_state == JobState.SUCCESS else "failure",
                          detail={"job": job.name, "state": str(new_state), "exit_code": exit_code,
                                  "elapsed_seconds": job.elapsed_seconds(), "errors": "; ".join(job.errors)[:500],
                                  "outputs": len(job.outputs), "outputs_with_findings": flagged})
        log.info("job ended", extra={"job": job.uid, "state": str(new_state), "exit_code": exit_code})

    async def recover(self) -> None:
        """After a restart: a job that was pending or running when the service stopped ends in ERROR (its process
        died with the service: the runner ties it to the service's life)."""
        for job in await self.store.unfinished():
            await self._finish(job, None, [f"the job service restarted while the job was {job.state.lower()}"],
                               state=JobState.ERROR)

    async def cancel(self, principal: str, name: str) -> None:
        """Jobman's ``DELETE .../jobs/{name}``: a pending or running job is killed and ends in ERROR."""
        job = await self._owned(principal, name)
        await self.record(actor=_actor(principal), action="job-cancel", target=job.uid, outcome="success",
                          detail={"job": job.name, "state": str(job.state)})
        if job.state in FINAL_STATES:
            return
        event = self._cancel.get(job.uid)
        if event is not None:
            event.set()
        task = self._tasks.get(job.uid)
        if task is not None:
            await asyncio.shield(task)
        fresh = await self.store.by_uid(job.uid)
        if fresh is not None and fresh.state not in FINAL_STATES:
            await self._finish(fresh, None, ["cancelled (DELETE)"], state=JobState.ERROR)

    async def wait(self, uid: str) -> None:
        """Until the job's run ends (tests, shutdown)."""
        task = self._tasks.get(uid)
        if task is not None:
            await asyncio.shield(task)

    async def stop(self) -> None:
        """Cancel every run (service shutdown): each process is killed, each job recorded as ended."""
        for event in self._cancel.values():
            event.set()
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- reading ---------------------------------------------------------------------------------------------------

    async def _owned(self, principal: str, name: str) -> Job:
        job = await self.store.by_name(principal, name)
        if job is None:
            raise JobError(404, f"you have no job named {name!r}")
        return job

    async def job(self, principal: str, name: str) -> Job:
        return await self._owned(principal, name)

    async def logs(self, principal: str, name: str) -> str:
        """The log, once a data holder released it; until then a line that says it is held for review."""
        job = await self._owned(principal, name)
        record = job.outputs.get(output_key(LOG_NAME))
        if record is not None and record["decision"] == "released":
            return self.released_path(job, record).read_text(encoding="utf-8", errors="replace")
        if job.state not in FINAL_STATES:
            return f"[eucaim-node] job {job.name} is {job.state}; its log is reviewed by the data holder after it ends\n"
        verdict = "was not released" if record is not None and record["decision"] == "rejected" else \
            "is held until the data holder reviews it"
        return f"[eucaim-node] the log of job {job.name} {verdict}\n"

    def released_path(self, job: Job, record: dict[str, Any]) -> Path:
        return self.work_dir / job.uid / "released" / record["sha256"]

    async def released_output(self, principal: str, name: str, file: str) -> tuple[Path, str]:
        """(path of the released copy, its SHA-256) of a released output; 404 for anything not released."""
        job = await self._owned(principal, name)
        record = job.outputs.get(output_key(file))
        if record is None or record["decision"] != "released" or record["name"] != file:
            raise JobError(404, f"job {name!r} has no released output {file!r}")
        return self.released_path(job, record), record["sha256"]

    async def released_list(self, principal: str, name: str) -> list[dict[str, Any]]:
        job = await self._owned(principal, name)
        return [{"name": o["name"], "size": o["size"], "sha256": o["sha256"]}
                for o in job.outputs.values() if o["decision"] == "released"]

    # -- egress review (data holders) ------------------------------------------------------------------------------

    async def for_review(self, uid: str) -> Job:
        job = await self.store.by_uid(uid)
        if job is None:
            raise JobError(404, f"no job {uid}")
        return job

    def _output_path(self, job: Job, file: str) -> Path:
        return self.work_dir / job.uid / (LOG_NAME if file == LOG_NAME else f"sandbox/{file}")

    async def output_bytes(self, uid: str, file: str, limit: int = 16 * 1024 * 1024) -> bytes:
        """What a reviewer reads before deciding: one listed output, as it is now (at most ``limit`` bytes)."""
        job = await self.for_review(uid)
        record = job.outputs.get(output_key(file))
        if record is None or record["name"] != file:
            raise JobError(404, f"job {uid} has no output {file!r}")
        path = self._output_path(job, file)
        if path.is_symlink() or not path.is_file():
            raise JobError(409, f"{file!r} is not a regular file")
        return await asyncio.to_thread(_read_head, path, limit)

    async def decide(self, reviewer: str, uid: str, files: list[str], *, release: bool, reason: str = "",
                     despite_findings: bool = False, operator: str | None = None) -> list[dict[str, Any]]:
        """Release (copy out of the sandbox, hash recorded) or reject each file; each decision is recorded."""
        job = await self.for_review(uid)
        if job.state not in FINAL_STATES:
            raise JobError(409, f"job {uid} is {job.state}: outputs are reviewed after it ends")
        if not files:
            raise JobError(400, "name at least one output")
        records = []
        for file in files:
            record = job.outputs.get(output_key(file))
            if record is None or record["name"] != file:
                raise JobError(404, f"job {uid} has no output {file!r}")
            if record["decision"] != "pending":
                raise JobError(409, f"{file!r} was already {record['decision']}")
            if release:
                if record["sha256"] is None:
                    raise JobError(409, f"{file!r} is not a regular file: it cannot be released")
                if record["findings"] and not despite_findings:
                    raise JobError(409, f"{file!r} has {len(record['findings'])} finding(s): release it only after "
                                        "checking them, with --despite-findings")
                await asyncio.to_thread(self._copy_out, job, file, record)
            records.append(record)
        for file, record in zip(files, records, strict=True):
            record.update(decision="released" if release else "rejected", reviewer=reviewer,
                          decided_at=self.clock(), reason=reason[:500])
            detail: dict[str, Any] = {"job": job.name, "owner": job.owner, "file": file, "sha256": record["sha256"],
                                      "size": record["size"], "findings": len(record["findings"]),
                                      "operator": operator}
            if not release:
                detail["reason"] = reason[:300]
            await self.record(actor=f"reviewer:{reviewer}", action="job-release" if release else "job-reject",
                              target=job.uid, outcome="success", detail=detail)
        await self.store.save(job)
        return records

    def _copy_out(self, job: Job, file: str, record: dict[str, Any]) -> None:
        source = self._output_path(job, file)
        if source.is_symlink() or not source.is_file():
            raise JobError(409, f"{file!r} is no longer a regular file")
        target = self.released_path(job, record)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(source, tmp, follow_symlinks=False)
        if sha256_file(tmp) != record["sha256"]:
            tmp.unlink()
            raise JobError(409, f"{file!r} changed since it was listed for review; list the outputs again")
        tmp.replace(target)


def _read_head(path: Path, limit: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(limit)


def _actor(principal: str) -> str:
    return f"jobs-client:{principal}"


def _tool_changed(tool: Tool) -> str | None:
    if tool.digest is None:
        return None
    target = command_file(tool.command)
    if target is None or file_digest(target) != tool.digest:
        return f"tool {tool.ref} changed on disk since the node loaded its allow-list: not run"
    return None
