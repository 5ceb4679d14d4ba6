"""Look at a page as a person would: Debian's Chromium, headless, with a fresh profile and no background traffic.

Used by the tests that check what the node shows (the readiness report, the URLs ``make up`` prints).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from .install import ensure_debian_tool

#: Headless, no sandbox (root in CI), no GPU, no QUIC, and none of the browser's own network chatter.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def _run(url: str, extra: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    binary = ensure_debian_tool("chromium", "chromium")
    with tempfile.TemporaryDirectory(prefix="eucaim-chromium-") as profile:
        return subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *extra, url], capture_output=True,
                              text=True, timeout=timeout, check=False)


def dump_dom(url: str, *, timeout: float = 60.0) -> str:
    """The DOM Chromium built for ``url`` (after parsing and layout), serialised."""
    done = _run(url, ["--dump-dom"], timeout)
    if done.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom {url} exited {done.returncode}: {done.stderr[-500:]}")
    return done.stdout


def screenshot(url: str, path: Path, *, width: int = 1200, height: int = 2400, timeout: float = 60.0) -> Path:
    """A PNG of ``url`` as rendered in a ``width``×``height`` window."""
    done = _run(url, [f"--screenshot={path}", f"--window-size={width},{height}"], timeout)
    if done.returncode != 0 or not path.is_file():
        raise RuntimeError(f"chromium --screenshot {url} exited {done.returncode}: {done.stderr[-500:]}")
    return path
