"""Thin wrappers over two real DICOM tools: dcmtk's ``storescu`` and dicom3tools' ``dciodvfy``."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .install import find_tool
from .settings import LOCAL_MODALITY_AET

PathLike = str | os.PathLike[str]


class DicomToolError(RuntimeError):
    """A DICOM tool failed; the message carries its command line and output."""

    def __init__(self, command: list[str], returncode: int, output: str) -> None:
        self.command = command
        self.returncode = returncode
        self.output = output
        super().__init__(f"{Path(command[0]).name} failed (exit code {returncode}): {' '.join(command[1:])}\n"
                         f"{output.strip()}")


# storescu prints failures as log lines at level E (and F); a failed C-STORE status too.
_STORESCU_FAILURE = re.compile(r"^(E|F): |Store Failed|Status: (?!Success)", re.MULTILINE)


def storescu(
    files_or_dir: PathLike | Iterable[PathLike],
    host: str,
    port: int,
    called_aet: str,
    calling_aet: str = LOCAL_MODALITY_AET,
    *,
    timeout: float = 300.0,
) -> None:
    """Send DICOM files with C-STORE; a directory is scanned recursively.

    Proposes exactly the presentation contexts the files need (``-R``), so compressed transfer syntaxes are sent
    as they are. Raises :class:`DicomToolError` with storescu's output on failure. dcmtk 3.6.7 refuses SOP
    classes it does not know as storage classes ("unknown storage SOP class"); send those through Orthanc's
    REST API (``POST /instances``) instead.
    """
    if isinstance(files_or_dir, (str, os.PathLike)):
        paths = [Path(files_or_dir)]
    else:
        paths = [Path(p) for p in files_or_dir]
    if not paths:
        raise ValueError("storescu: nothing to send")
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(path)
    command = [find_tool("storescu"), "-aet", calling_aet, "-aec", called_aet, "-R", "-to", "30", "-ta", "30",
               "-td", "60"]
    if any(path.is_dir() for path in paths):
        command += ["+sd", "+r"]
    command += [host, str(port), *(str(path) for path in paths)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or _STORESCU_FAILURE.search(output):
        raise DicomToolError(command, done.returncode, output)


@dataclass
class DciodvfyReport:
    """What dciodvfy said about one file."""

    path: Path
    returncode: int
    errors: int
    warnings: int
    lines: list[str] = field(default_factory=list)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.lines if line.startswith("Error")]

    @property
    def warning_lines(self) -> list[str]:
        return [line for line in self.lines if line.startswith("Warning")]

    @property
    def ok(self) -> bool:
        return self.errors == 0


def dciodvfy(path: PathLike, *, timeout: float = 120.0) -> DciodvfyReport:
    """Verify one DICOM file against its IOD with dciodvfy; count the ``Error``/``Warning`` lines it prints."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(file)
    command = [find_tool("dciodvfy"), str(file)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          errors="replace")
    lines = [line.rstrip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    errors = sum(1 for line in lines if line.startswith("Error"))
    warnings = sum(1 for line in lines if line.startswith("Warning"))
    if done.returncode != 0 and errors == 0 and not lines:
        raise DicomToolError(command, done.returncode, "")
    return DciodvfyReport(path=file, returncode=done.returncode, errors=errors, warnings=warnings, lines=lines)
