"""What the job core needs from the world: datasets and grants, a runner, a store, the audit log."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .core.catalogue import Tool
from .core.model import Flavour, Job, Mount


class UnknownDataset(LookupError):
    """No materialised dataset has this id."""


class DatasetAccess(Protocol):
    """Datasets and grants (issue 10), narrowed to what a job needs; the adapter maps them onto the datasets library."""

    async def resolve(self, dataset_id: str) -> Path:
        """The materialised, read-only directory of ``dataset_id``; UnknownDataset if there is none."""

    async def holds_open_grant(self, principal: str, dataset_id: str) -> bool:
        """True if ``principal`` holds a grant on ``dataset_id`` that is open now (not expired, not revoked)."""


@dataclass(frozen=True)
class RunRequest:
    job_uid: str
    tool: Tool
    args: list[str]
    flavour: Flavour
    datasets: dict[str, Path]
    job_dir: Path

    @property
    def sandbox(self) -> Path:
        return self.job_dir / "sandbox"

    @property
    def log(self) -> Path:
        return self.job_dir / "job.log"


@dataclass
class RunPlan:
    """What the runner will do, known before it starts: reported as the job's mounts, environment and command."""

    mounts: list[Mount]
    env: dict[str, str]
    command: list[str]


@dataclass
class RunResult:
    exit_code: int | None
    errors: list[str] = field(default_factory=list)


class Runner(Protocol):
    def plan(self, request: RunRequest) -> RunPlan:
        """Prepare the job's directories; the mounts, environment and command it will run with."""

    async def run(self, request: RunRequest, plan: RunPlan, cancelled: asyncio.Event) -> RunResult:
        """Run to the end, to the flavour's limits (killed), or until ``cancelled`` is set (killed)."""


class DuplicateJob(Exception):
    """The owner already has a job of this name."""


class JobStore(Protocol):
    async def insert(self, job: Job) -> None: ...
    async def save(self, job: Job) -> None: ...
    async def by_name(self, owner: str, name: str) -> Job | None: ...
    async def by_uid(self, uid: str) -> Job | None: ...
    async def unfinished(self) -> list[Job]: ...
    async def recent(self, limit: int, owner: str | None = None) -> list[Job]:
        """The ``limit`` most recently created jobs, newest first; only ``owner``'s when given."""
        ...


class Recorder(Protocol):
    async def __call__(self, *, actor: str, action: str, target: str | None, outcome: str,
                       detail: dict[str, Any]) -> None:
        """One audit record (an AccessRecorded event the audit service appends to the ledger); raises if not sent."""
