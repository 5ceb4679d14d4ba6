"""Where the dataset root is (``EUCAIM_DATASET_ROOT``): the materialiser writes it, the CLI and jobs read it."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from eucaim_node.settings import NodeSettings


class DatasetRootSettings(NodeSettings):
    dataset_root: Path = Field(description="Directory holding one directory per materialised dataset (absolute).")

    @field_validator("dataset_root")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"{value} is not an absolute path")
        return value
