"""Jobs, their states and the report, in the shapes of EUCAIM's Jobman (GitHub EUCAIM/jobman, src/common/model).

The FEM client launches work through Jobman's REST API (EUCAIM/k8s-deploy-node, fem-client ``launcher.json``):
a submission (``SubmitProps``) names the job, an image ``NAME:TAG``, its command arguments, a resource flavour and
the datasets; the report (``JobDetails``) carries the state (``EJobStatus``), exit code, start and stop times, the
elapsed seconds, errors and the mounts with their read-only flags; the logs (``JobLog``) are ``{"stdOut": ...}``.
"""

from __future__ import annotations

import re
import shlex
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: A job's name: a DNS label of at most 36 characters (Jobman's SubmitProps.jobName; the FEM sends its execution id).
JOB_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,34}[a-z0-9])?$")
#: A dataset id: the dataset service names each dataset directory by a UUID (NOTES.md, "Dataset on disk").
DATASET_ID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: An image as the API names it: ``NAME:TAG`` (Jobman: "name of the Docker image followed by colon followed by version").
IMAGE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._/-]{0,127}):(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127})$")
MAX_ARGS = 64
MAX_ARG_CHARS = 4096


class JobState(StrEnum):
    """Jobman's EJobStatus. PENDING_ERROR: refused when it was about to start (e.g. the grant had expired)."""

    PENDING = "PENDING"
    PENDING_ERROR = "PENDING_ERROR"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"


FINAL_STATES = frozenset({JobState.PENDING_ERROR, JobState.SUCCESS, JobState.ERROR})
#: Which state may follow which: a job never leaves a final state.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.PENDING_ERROR, JobState.ERROR}),
    JobState.RUNNING: frozenset({JobState.SUCCESS, JobState.ERROR}),
}


class InvalidTransition(Exception):
    pass


def check_transition(current: JobState, new: JobState) -> None:
    if new not in TRANSITIONS.get(current, frozenset()):
        raise InvalidTransition(f"a job in state {current} cannot become {new}")


class JobError(Exception):
    """A request the node refuses: ``status`` is the HTTP status, the message is shown to the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class SubmissionError(JobError):
    """The submission cannot be accepted as it is: answered 400 with this message (Jobman's ErrorResponse)."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class Submission(BaseModel):
    """Jobman's SubmitProps as the FEM client sends it (``launcher.json`` ``submit_run.body``).

    The FEM sends ``commandArgs`` as one string and ``datasetsList`` as one id; Jobman declares a list of strings and
    "UUIDs separated by one comma". Both forms are accepted; a string of arguments is split like a POSIX shell would
    (no expansion: nothing is ever run by a shell).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobName: str | None = Field(default=None, description="DNS label, at most 36 characters; generated if absent.")
    image: str = Field(description="NAME:TAG of an allowed tool (GET .../images).")
    commandArgs: list[str] | str = Field(default_factory=list)
    resources: str | None = Field(default=None, description="A flavour name; the node's default if absent.")
    datasetsList: str | list[str]
    dryRun: bool = False
    annotations: str | None = None
    env: list[dict[str, Any]] = Field(default_factory=list)
    logFile: str | None = None

    @field_validator("jobName")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not JOB_NAME.match(value):
            raise ValueError("jobName must be lower-case letters, digits and '-', 1 to 36 characters, "
                             "starting and ending with a letter or digit")
        return value

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        if not IMAGE.match(value):
            raise ValueError("image must be NAME:TAG (GET /images lists what this node runs)")
        return value

    @field_validator("env")
    @classmethod
    def _no_env(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if value:
            raise ValueError("env is not supported: a job's environment is DATA_PATH and SANDBOX_PATH only")
        return value

    def arguments(self) -> list[str]:
        if isinstance(self.commandArgs, str):
            try:
                args = shlex.split(self.commandArgs)
            except ValueError as exc:
                raise SubmissionError(f"commandArgs: {exc}") from None
        else:
            args = list(self.commandArgs)
        if len(args) > MAX_ARGS or any(len(a) > MAX_ARG_CHARS or "\x00" in a for a in args):
            raise SubmissionError(f"commandArgs: at most {MAX_ARGS} arguments of at most {MAX_ARG_CHARS} characters, "
                                  "no NUL")
        return args

    def dataset_ids(self) -> list[str]:
        raw = self.datasetsList.split(",") if isinstance(self.datasetsList, str) else self.datasetsList
        ids = [d.strip() for d in raw if d.strip()]
        if not ids:
            raise SubmissionError("datasetsList names no dataset")
        bad = [d for d in ids if not DATASET_ID.match(d)]
        if bad:
            raise SubmissionError(f"datasetsList: {bad[0][:64]!r} is not a dataset id (a UUID)")
        return list(dict.fromkeys(d.lower() for d in ids))

    def name_or_new(self) -> str:
        return self.jobName or str(uuid.uuid4())


@dataclass(frozen=True)
class Flavour:
    """A resource flavour (Jobman's KubeResourcesFlavor): what a job may use, and for how long."""

    name: str
    cpu: float
    memory_mib: int
    max_seconds: int
    disk_mib: int
    max_processes: int = 64
    gpu: int = 0

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "cpu": self.cpu, "memoryMiB": self.memory_mib, "maxSeconds": self.max_seconds,
                "diskMiB": self.disk_mib, "maxProcesses": self.max_processes, "gpu": self.gpu}


@dataclass(frozen=True)
class Mount:
    source: str
    mount_path: str
    read_only: bool

    def report(self) -> dict[str, Any]:
        return {"source": self.source, "mountPath": self.mount_path, "readOnly": self.read_only}


@dataclass
class Job:
    """One job as the node keeps it (one MongoDB document, ``_id`` = ``uid``)."""

    uid: str
    name: str
    owner: str
    image: str
    tool: str
    args: list[str]
    flavour: str
    datasets: list[str]
    state: JobState = JobState.PENDING
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    errors: list[str] = field(default_factory=list)
    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    #: output file name -> review record (see core/egress.py); the log is the output named LOG_NAME.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        return {"_id": self.uid, "name": self.name, "owner": self.owner, "image": self.image, "tool": self.tool,
                "args": self.args, "flavour": self.flavour, "datasets": self.datasets, "state": str(self.state),
                "created_at": self.created_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "exit_code": self.exit_code, "errors": self.errors, "mounts": [m.report() for m in self.mounts],
                "env": self.env, "command": self.command, "outputs": self.outputs}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Job:
        def aware(value: datetime | None) -> datetime | None:
            return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

        return cls(uid=doc["_id"], name=doc["name"], owner=doc["owner"], image=doc["image"], tool=doc["tool"],
                   args=list(doc["args"]), flavour=doc["flavour"], datasets=list(doc["datasets"]),
                   state=JobState(doc["state"]), created_at=aware(doc["created_at"]),  # type: ignore[arg-type]
                   started_at=aware(doc.get("started_at")), finished_at=aware(doc.get("finished_at")),
                   exit_code=doc.get("exit_code"), errors=list(doc.get("errors", [])),
                   mounts=[Mount(m["source"], m["mountPath"], m["readOnly"]) for m in doc.get("mounts", [])],
                   env=dict(doc.get("env", {})), command=list(doc.get("command", [])),
                   outputs=dict(doc.get("outputs", {})))

    def elapsed_seconds(self, now: datetime | None = None) -> int | None:
        if self.started_at is None:
            return None
        end = self.finished_at or now or datetime.now(UTC)
        return max(0, round((end - self.started_at).total_seconds()))


def page(data: list[Any]) -> dict[str, Any]:
    """Jobman's ``Page<T>``: every item at once (``skip`` 0)."""
    return {"data": data, "size": len(data), "total": len(data), "skip": 0}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def summary(job: Job) -> dict[str, Any]:
    """Jobman's JobSummary of ``job`` (an item of ``GET .../jobs``): the first fields of its JobDetails."""
    return {"name": job.name, "uid": job.uid, "status": str(job.state), "createdAt": _iso(job.created_at),
            "position": 0, "flavor": job.flavour}


def report(job: Job, server_name: str) -> dict[str, Any]:
    """Jobman's JobDetails of ``job`` (what ``GET .../jobs/{name}`` answers and the FEM's ``run_report`` reads)."""
    return {
        **summary(job),
        "exitCode": job.exit_code,
        "startedAt": _iso(job.started_at),
        "finishedAt": _iso(job.finished_at),
        "executionDuration": job.elapsed_seconds(),
        "errors": list(job.errors),
        "user": job.owner,
        "image": job.image,
        "privileged": False,
        "mounts": [m.report() for m in job.mounts],
        "env": [{"name": k, "value": v} for k, v in job.env.items()],
        "command": job.command[:len(job.command) - len(job.args)] if job.command else None,
        "args": list(job.args),
        "host": {"serverName": server_name, "user": None, "uid": None, "gid": None},
        "resources": {"usage": None},
    }
