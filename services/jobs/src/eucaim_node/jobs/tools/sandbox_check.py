"""Operator's tool: tries to break out of a job's sandbox and says whether the node held.

Run it as a job after installing a node (``eucaim/sandbox-check:1.0``); each check prints one line, and the
checks that must be refused exit non-zero when they succeed. Modes (first argument):

- ``write-dataset``: create a file in, and append to ``index.json`` of, every dataset under ``$DATA_PATH``;
- ``network``: open a TCP connection to 1.1.1.1:53 and to the node's loopback;
- ``write-host``: create a file in ``/`` and in ``/var`` (anything outside the sandbox);
- ``sleep SECONDS``: sleep (a job that runs past its flavour's wall time is killed);
- ``fork-bomb``: fork without end (bounded by the flavour's process limit, then killed at its wall time);
- ``fill-disk``: write to the sandbox until the node stops it (its disk limit).

Exit 0 when every refusal held (``write-*``, ``network``), 1 when something got through.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from pathlib import Path


def _attempt(label: str, action) -> bool:
    """True when ``action`` was refused (what must happen)."""
    try:
        action()
    except OSError as exc:
        print(f"{label}: refused ({errno.errorcode.get(exc.errno or 0, exc.errno)}: {exc.strerror})", flush=True)
        return True
    print(f"{label}: ALLOWED", flush=True)
    return False


def write_dataset() -> bool:
    data = Path(os.environ["DATA_PATH"])
    held = True
    for dataset in sorted(p for p in data.iterdir() if p.is_dir()):
        held &= _attempt(f"create a file in dataset {dataset.name}", lambda d=dataset: (d / "tampered").write_text("x"))
        held &= _attempt(f"append to index.json of {dataset.name}",
                         lambda d=dataset: (d / "index.json").open("a").close())
    return held


def network() -> bool:
    held = True
    for host, port in (("1.1.1.1", 53), ("127.0.0.1", 22)):
        held &= _attempt(f"connect to {host}:{port}", lambda h=host, p=port: socket.create_connection((h, p), 2).close())
    return held


def write_host() -> bool:
    held = True
    for directory in ("/", "/var", str(Path.home().parent)):
        held &= _attempt(f"create a file in {directory}", lambda d=directory: Path(d, "eucaim-escape").write_text("x"))
    return held


def fork_bomb() -> None:
    forked = 0
    while True:
        try:
            if os.fork() == 0:
                time.sleep(3600)
                os._exit(0)
            forked += 1
        except OSError as exc:
            print(f"fork refused after {forked} processes: {errno.errorcode.get(exc.errno or 0)}", flush=True)
            time.sleep(3600)


def fill_disk() -> None:
    chunk = b"\0" * (1 << 20)
    written = 0
    with open(Path(os.environ["SANDBOX_PATH"]) / "fill.bin", "wb") as handle:
        while True:
            handle.write(chunk)
            handle.flush()
            written += 1
            if written % 16 == 0:
                print(f"{written} MiB written", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    mode = args[0] if args else "write-dataset"
    if mode == "sleep":
        time.sleep(float(args[1]) if len(args) > 1 else 3600)
        return 0
    if mode == "fork-bomb":
        fork_bomb()
    if mode == "fill-disk":
        fill_disk()
    checks = {"write-dataset": write_dataset, "network": network, "write-host": write_host}
    if mode not in checks:
        print(f"unknown mode {mode!r}; one of {', '.join([*checks, 'sleep', 'fork-bomb', 'fill-disk'])}")
        return 2
    return 0 if checks[mode]() else 1


if __name__ == "__main__":
    sys.exit(main())
