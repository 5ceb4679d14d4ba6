"""What a job may run and with what: the tool allow-list and the resource flavours, each read from a JSON file.

A tool is what the API calls an image (``NAME:TAG``). For the local runner it is a command on this machine (an
executable, or ``{python} -m <module>``: the node's own interpreter); its file is hashed when the list is loaded
and again before each run, so a tool changed on disk after review does not run. For the Kubernetes runner it is an
OCI image reference pinned by digest (``registry/repository@sha256:...``), from an allowed registry only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .model import IMAGE, Flavour, page

#: ``registry/repository@sha256:<64 hex>`` (OCI distribution spec, "Pulling manifests": a digest reference).
PINNED_IMAGE = re.compile(r"^(?P<registry>[a-z0-9.-]+(?::[0-9]{1,5})?)/(?P<repository>[a-z0-9._/-]+)"
                          r"@sha256:(?P<digest>[0-9a-f]{64})$")
PYTHON = "{python}"


class CatalogueError(ValueError):
    """The allow-list or the flavours file is unusable: the service does not start (one line naming the file)."""


class _ToolEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    tag: str
    description: str = ""
    command: list[str] = Field(default_factory=list, description="Local runner: argv before the job's arguments.")
    image: str | None = Field(default=None, description="Kubernetes runner: registry/repository@sha256:<digest>.")

    @model_validator(mode="after")
    def _check(self) -> _ToolEntry:
        if not IMAGE.match(f"{self.name}:{self.tag}"):
            raise ValueError(f"{self.name}:{self.tag} is not NAME:TAG")
        if not self.command and not self.image:
            raise ValueError(f"{self.name}:{self.tag}: give a local command, a pinned image, or both")
        if self.image is not None and not PINNED_IMAGE.match(self.image):
            raise ValueError(f"{self.name}:{self.tag}: image {self.image!r} is not pinned by digest "
                             "(registry/repository@sha256:<64 hex>)")
        return self


@dataclass(frozen=True)
class Tool:
    name: str
    tag: str
    description: str
    command: tuple[str, ...]
    image: str | None
    #: sha256 of the local command's file (the module's source, or the executable) when the list was loaded.
    digest: str | None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.tag}"

    def local_command(self) -> list[str]:
        return [sys.executable if part == PYTHON else part for part in self.command]


def command_file(command: tuple[str, ...]) -> Path | None:
    """The file a local command runs: the module's source for ``{python} -m module``, else the executable."""
    if not command:
        return None
    if command[0] == PYTHON and len(command) >= 3 and command[1] == "-m":
        spec = importlib.util.find_spec(command[2])
        return Path(spec.origin) if spec is not None and spec.origin else None
    found = shutil.which(command[0])
    return Path(found) if found else None


def file_digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def load_tools(path: Path, *, local: bool) -> dict[str, Tool]:
    """NAME:TAG -> tool, from ``{"tools": [...]}``; with ``local``, every tool needs a command that exists."""
    raw = _read_json(path)
    try:
        entries = [_ToolEntry.model_validate(item) for item in raw.get("tools", [])]
    except ValidationError as exc:
        raise CatalogueError(f"{path}: {exc.errors()[0]['msg']}") from None
    tools: dict[str, Tool] = {}
    for entry in entries:
        command = tuple(entry.command)
        digest = None
        if local:
            target = command_file(command)
            if target is None:
                raise CatalogueError(f"{path}: tool {entry.name}:{entry.tag}: command {command[:3]} not found")
            digest = file_digest(target)
        tool = Tool(entry.name, entry.tag, entry.description, command, entry.image, digest)
        if tool.ref in tools:
            raise CatalogueError(f"{path}: tool {tool.ref} listed twice")
        tools[tool.ref] = tool
    return tools


class _FlavourEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    cpu: float = Field(gt=0, le=256)
    memoryMiB: int = Field(ge=64, le=1024 * 1024)
    maxSeconds: int = Field(ge=1, le=7 * 86400)
    diskMiB: int = Field(ge=1, le=10 * 1024 * 1024)
    maxProcesses: int = Field(default=64, ge=1, le=4096)
    gpu: int = Field(default=0, ge=0, le=16)


def load_flavours(path: Path) -> tuple[dict[str, Flavour], str]:
    """(name -> flavour, the default flavour's name) from ``{"default": ..., "flavours": [...]}``."""
    raw = _read_json(path)
    try:
        entries = [_FlavourEntry.model_validate(item) for item in raw.get("flavours", [])]
    except ValidationError as exc:
        raise CatalogueError(f"{path}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None
    flavours = {e.name: Flavour(e.name, e.cpu, e.memoryMiB, e.maxSeconds, e.diskMiB, e.maxProcesses, e.gpu)
                for e in entries}
    default = raw.get("default")
    if default not in flavours:
        raise CatalogueError(f"{path}: the default flavour {default!r} is not listed")
    return flavours, default


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise CatalogueError(f"{path} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise CatalogueError(f"{path}: expected a JSON object")
    return raw


def images_page(tools: dict[str, Tool]) -> dict[str, Any]:
    """Jobman's ``Page<ImageRepo>`` (``GET .../images``): one repository per tool name, one artifact per tag."""
    repos: dict[str, dict[str, Any]] = {}
    for tool in tools.values():
        repo = repos.setdefault(tool.name, {"name": tool.name, "description": tool.description, "artifacts": []})
        digest = tool.image.rpartition("@")[2] if tool.image else tool.digest
        repo["artifacts"].append({"tags": [tool.tag], "digest": digest, "entrypoint": [], "cmd": []})
    return page(list(repos.values()))
