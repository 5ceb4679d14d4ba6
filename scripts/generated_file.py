"""Write a file generated from the code, or with ``--check`` tell whether the committed one is stale."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def write_or_check(path: Path, text: str, *, description: str, make_target: str) -> int:
    """The ``main`` of a generator script: exit status 0, or 1 when ``--check`` finds ``path`` stale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    args = parser.parse_args()
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is stale: run `make {make_target}`", file=sys.stderr)
            return 1
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
    return 0
