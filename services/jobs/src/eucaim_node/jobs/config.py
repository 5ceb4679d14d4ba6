"""Settings of the job service (env prefix ``EUCAIM_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from eucaim_node.datasets.settings import DatasetRootSettings
from eucaim_node.runtime import KafkaSettings, ServiceSettings
from eucaim_node.settings import NodeSettings, ReadableFile, read_tokens
from eucaim_node.store import MongoSettings

from .core.egress import ReviewRules
from .core.jobs import JobLimits


class JobApiSettings(NodeSettings):
    jobs_token_file: ReadableFile = Field(
        description="Clients of the Jobman API (the FEM client), `name:token` per line; the name is the principal "
                    "whose dataset grants count.")
    jobs_review_token_file: ReadableFile = Field(
        description="Data holders who review and release outputs (`eucaim-node job ...`), `name:token` per line.")

    @field_validator("jobs_token_file", "jobs_review_token_file")
    @classmethod
    def _tokens(cls, value: Path) -> Path:
        read_tokens(value)
        return value

    def client_tokens(self) -> dict[str, str]:
        return read_tokens(self.jobs_token_file)

    def review_tokens(self) -> dict[str, str]:
        return read_tokens(self.jobs_review_token_file)


class JobRunSettings(NodeSettings):
    jobs_runner: Literal["local", "kubernetes"] = Field(
        default="local", description="Where jobs run: processes on this machine, or Kubernetes Jobs.")
    jobs_work_dir: Path = Field(description="Per-job directories (sandbox, log, released copies).")
    jobs_tools_file: ReadableFile = Field(description="The tool allow-list (JSON; deploy/local/jobs/tools.json).")
    jobs_flavours_file: ReadableFile = Field(description="The resource flavours (JSON).")
    jobs_max_running: int = Field(default=2, ge=1, le=256, description="Jobs running at once; others wait PENDING.")
    jobs_max_unfinished_per_client: int = Field(default=20, ge=1, le=10_000)
    jobs_local_mount_root: Path = Field(
        default=Path("/mnt"), description="Existing directory a local job sees its datasets/ and sandbox/ under.")
    jobs_local_hide_paths: str = Field(
        default="", description="Comma-separated directories a local job must not see (the node's state).")
    jobs_local_insecure_no_isolation: bool = Field(
        default=False, description="Run local jobs without namespaces when the machine has none: NO network, "
                                   "file-system or process isolation. Never on a node with real data.")

    def hide_paths(self) -> tuple[Path, ...]:
        return tuple(Path(p.strip()) for p in self.jobs_local_hide_paths.split(",") if p.strip())


class EgressSettings(NodeSettings):
    jobs_output_suffixes: str = Field(
        default=".json,.csv,.tsv,.txt,.md", description="Output file types a reviewer sees without a type finding.")
    jobs_output_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=1 << 34)
    jobs_small_cell_minimum: int = Field(
        default=5, ge=2, le=1000, description="Counts of people under this are small cells (as the search's minimum).")

    def review_rules(self) -> ReviewRules:
        suffixes = frozenset(s.strip().lower() for s in self.jobs_output_suffixes.split(",") if s.strip())
        return ReviewRules(suffixes, self.jobs_output_max_bytes, self.jobs_small_cell_minimum)


class JobsSettings(ServiceSettings, KafkaSettings, MongoSettings, DatasetRootSettings, JobApiSettings, JobRunSettings,
                   EgressSettings):
    def limits(self) -> JobLimits:
        return JobLimits(self.jobs_max_running, self.jobs_max_unfinished_per_client)
