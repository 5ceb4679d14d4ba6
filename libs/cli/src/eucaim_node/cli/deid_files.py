"""File handling for ``eucaim-node deid``: finding inputs, reading them safely, and writing only
inside DST and QDIR (the quarantine folder, which holds identifiable originals, privately).

- The walk never follows a symbolic link to a folder, and never aborts: a folder it cannot list,
  a broken link, a FIFO, socket or device is recorded as :class:`Skipped` and the walk goes on.
- An input is opened non-blocking and checked to be a regular file before it is read, so a FIFO
  (even one swapped in after the walk) can never make the run hang.
- Every path written is resolved (all symbolic links followed) and must lie under the resolved
  DST or QDIR: an absolute part, ``..`` or a planted link that leads elsewhere is refused.
- QDIR (when created here) and every folder under it that leads to a file written are mode 0700
  (also one an earlier run left open), files 0600, whatever the umask.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_SPECIAL_KINDS = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
                  (stat.S_ISBLK, "block device"))


class UnsafePath(Exception):
    """A path to be written resolves outside the folder it must stay in."""


class NotRegularFile(Exception):
    """An input turned out not to be a regular file when opened (its kind is the message)."""


@dataclass(frozen=True)
class Skipped:
    """An entry of SRC that is not an input file: reported, counted, never read."""

    source: str
    code: str  # unreadable-folder, broken-symlink, symlinked-folder, special-file, vanished
    message: str


@dataclass
class Inventory:
    """What the walk found: regular files (sorted by path) and everything else."""

    files: list[Path]
    skipped: list[Skipped]


def relative_to_source(path: Path, src: Path) -> Path:
    """`path` relative to SRC (just the name when SRC is a single file)."""
    return Path(path.name) if path == src else path.relative_to(src)


def find_inputs(src: Path, skip: tuple[Path, ...]) -> Inventory:
    """Every regular file under `src` (or `src` itself), sorted by path, outside the folders in
    `skip` (resolved); other entries become :class:`Skipped`. Raises OSError only if `src`
    itself cannot be listed."""
    root = os.stat(src)
    if not stat.S_ISDIR(root.st_mode):
        if stat.S_ISREG(root.st_mode):
            return Inventory([src], [])
        return Inventory([], [Skipped(src.name, "special-file", f"not a regular file ({_kind(root.st_mode)})")])
    inventory = Inventory([], [])
    folders = [src]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as error:
            if folder == src:
                raise
            inventory.skipped.append(Skipped(str(folder.relative_to(src)), "unreadable-folder",
                                             f"cannot list folder ({_why(error)})"))
            continue
        for entry in entries:
            subfolder = _classify(entry, src, skip, inventory)
            if subfolder is not None:
                folders.append(subfolder)
    inventory.files.sort()
    inventory.skipped.sort(key=lambda s: Path(s.source))
    return inventory


def _classify(entry: os.DirEntry[str], src: Path, skip: tuple[Path, ...], inventory: Inventory) -> Path | None:
    """Record one directory entry; return it if it is a folder to walk into."""
    path = Path(entry.path)
    relative = str(path.relative_to(src))
    try:
        if entry.is_dir(follow_symlinks=False):
            return None if path.resolve() in skip else path
        mode = entry.stat(follow_symlinks=True).st_mode
    except FileNotFoundError:
        broken = entry.is_symlink()
        inventory.skipped.append(Skipped(relative, "broken-symlink" if broken else "vanished",
                                         "symbolic link to nothing" if broken else "gone before it could be read"))
        return None
    except OSError as error:
        inventory.skipped.append(Skipped(relative, "unreadable", f"cannot examine ({_why(error)})"))
        return None
    if stat.S_ISREG(mode):
        inventory.files.append(path)
    elif stat.S_ISDIR(mode):
        inventory.skipped.append(Skipped(relative, "symlinked-folder", "symbolic link to a folder, not followed"))
    else:
        inventory.skipped.append(Skipped(relative, "special-file", f"not a regular file ({_kind(mode)})"))
    return None


def _kind(mode: int) -> str:
    return next((name for test, name in _SPECIAL_KINDS if test(mode)), "special file")


def _why(error: OSError) -> str:
    return error.strerror or type(error).__name__


def read_regular_file(path: Path) -> bytes:
    """The bytes of `path`, opened without blocking and read only if it is a regular file.

    Raises :class:`NotRegularFile` (a FIFO is never read, so it cannot hang the run) or OSError.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(_kind(mode))
        return handle.read()


def inside(base: Path, target: Path) -> bool:
    """True if `target`, with every symbolic link resolved, is `base` (resolved) or under it."""
    return target.resolve().is_relative_to(base.resolve())


def safe_target(base: Path, relative: Path) -> Path:
    """``base / relative``, refused (:class:`UnsafePath`) if it would lead outside `base`."""
    target = base / relative
    if relative.is_absolute() or ".." in relative.parts or not inside(base, target):
        raise UnsafePath(str(relative))
    return target


def make_private_folder(path: Path) -> None:
    """Create `path` (and missing parents) with mode 0700, whatever the umask."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue
        folder.chmod(PRIVATE_DIR)  # mkdir's mode is filtered by the umask


def write_private_file(base: Path, relative: Path, data: bytes) -> Path:
    """Write `data` to ``base / relative`` with mode 0600 (every folder between `base` and it 0700,
    also one that existed), refusing any path that leads outside `base` and a symbolic link in the
    file's place."""
    target = safe_target(base, relative)
    make_private_folder(target.parent)
    if not inside(base, target.parent):  # a link planted while the folders were made
        raise UnsafePath(str(relative))
    for folder in relative.parents[:-1]:  # folders an earlier run (or version) may have left open
        (base / folder).chmod(PRIVATE_DIR)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE_FILE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(fd, PRIVATE_FILE)
        handle.write(data)
    return target
