"""A detached OS process with a pid file, a log file and a bounded readiness wait."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOG_TAIL_LINES = 20

log = logging.getLogger(__name__)


class ComponentFailed(RuntimeError):
    """A component could not be installed, started or made ready.

    The message names the component, the reason and the log path, followed by the last lines of that log.
    """

    def __init__(self, component: str, reason: str, log_path: Path | None = None, log_tail: str = "") -> None:
        self.component = component
        self.reason = reason
        self.log_path = log_path
        self.log_tail = log_tail
        message = f"{component}: {reason}"
        if log_path is not None:
            message += f" (log: {log_path})"
        if log_tail.strip():
            message += f"\n--- last lines of {log_path.name if log_path else 'output'} ---\n{log_tail.rstrip()}"
        super().__init__(message)


def tail_lines(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # "pid (comm) state ..." where comm may contain spaces and parentheses
    return stat[stat.rfind(")") + 2 :][:1] in ("Z", "X")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def find_pids_with_cmdline(cmdline: Sequence[str]) -> list[int]:
    """Live (non-zombie) pids whose command line is exactly ``cmdline``."""
    wanted = list(cmdline)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _proc_cmdline(int(entry)) == wanted and _pid_alive(int(entry)):
            found.append(int(entry))
    return sorted(found)


# Processes started by this Python process: polled so that they get reaped (no zombies in a long pytest session).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_EXIT_CODES: dict[int, int] = {}


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        _EXIT_CODES[pid] = child.returncode


@dataclass
class ManagedProcess:
    """One long-running process of the stack.

    ``command`` is run detached (own session) with ``env`` added to the current environment, stdout and stderr
    appended to ``log_path``. The pid file records the pid and the command line, and a pid only counts as ours
    while ``/proc/<pid>/cmdline`` still equals that command line. ``ready`` is a cheap probe returning True once
    the process serves; exceptions count as "not yet".
    """

    name: str
    command: Sequence[str]
    log_path: Path
    pid_path: Path
    ready: Callable[[], bool]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    start_timeout: float = 60.0
    stop_timeout: float = 30.0
    #: Ports that must be free before starting (checked on ``host``).
    ports: Sequence[int] = ()
    host: str = "127.0.0.1"
    endpoints: Mapping[str, str] = field(default_factory=dict)
    #: Treat a process with exactly our command line but no pid file as ours (e.g. the pid file was deleted).
    #: Only safe when the command line is unique to this profile (it names a file in the state dir).
    adopt_orphans: bool = False
    #: Variables of the current environment with these names are not passed on, whether or not ``env`` sets
    #: them: the stack's own settings (credentials among them) come from the stack, never from the shell.
    scrub_env: frozenset[str] = frozenset()

    # -- inspection -----------------------------------------------------------------------------------------

    def _read_pid_file(self) -> dict[str, object] | None:
        try:
            record = json.loads(self.pid_path.read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None

    def pid(self) -> int | None:
        """The pid of our running process, or None (a stale pid file is removed)."""
        record = self._read_pid_file()
        if record is None:
            if self.pid_path.exists():
                self.pid_path.unlink(missing_ok=True)
            return None
        pid = int(record["pid"])  # type: ignore[arg-type]
        _reap(pid)
        alive = _pid_alive(pid)
        cmdline = _proc_cmdline(pid) if alive else None
        # A child this process spawned is ours even before its exec shows our command line.
        if alive and (pid in _CHILDREN or cmdline == list(record.get("cmdline") or [])):  # type: ignore[call-overload]
            return pid
        log.info("%s: removing stale pid file %s (pid %d alive=%s cmdline=%s)", self.name, self.pid_path, pid, alive, cmdline)
        self.pid_path.unlink(missing_ok=True)
        return None

    def _write_pid_file(self, pid: int) -> None:
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        record = {"pid": pid, "cmdline": list(self.command), "started_at": time.time()}
        tmp = self.pid_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self.pid_path)

    def adopt(self) -> int | None:
        """If ``adopt_orphans`` and a process runs our exact command line without a pid file, record it."""
        if not self.adopt_orphans:
            return None
        orphans = find_pids_with_cmdline(self.command)
        if not orphans:
            return None
        log.info("%s: adopting running pid %d that has no pid file", self.name, orphans[0])
        self._write_pid_file(orphans[0])
        return orphans[0]

    def is_running(self) -> bool:
        return self.pid() is not None

    def is_ready(self) -> bool:
        try:
            return bool(self.ready())
        except Exception:
            return False

    def is_healthy(self) -> bool:
        return self.is_running() and self.is_ready()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return tail_lines(self.log_path, lines)

    def failed(self, reason: str) -> ComponentFailed:
        return ComponentFailed(self.name, reason, self.log_path, self.log_tail())

    # -- lifecycle ------------------------------------------------------------------------------------------

    def spawn(self) -> int:
        """Start the process if it is not running (no readiness wait); return its pid."""
        pid = self.pid() or self.adopt()
        if pid is not None:
            return pid
        for port in self.ports:
            if port_is_open(self.host, port):
                raise ComponentFailed(
                    self.name,
                    f"port {port} on {self.host} is already in use by a process this stack did not start",
                    self.log_path,
                )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        inherited = {k: v for k, v in os.environ.items() if k not in self.scrub_env}
        env = {**inherited, **self.env}
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            log.write(f"\n=== {stamp} starting {self.name}: {' '.join(self.command)}\n".encode())
            log.flush()
            try:
                child = subprocess.Popen(
                    list(self.command),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise self.failed(f"could not execute {self.command[0]!r}: {exc}") from exc
        _CHILDREN[child.pid] = child
        self._write_pid_file(child.pid)
        return child.pid

    def wait_ready(self, timeout: float | None = None, pid: int | None = None) -> None:
        """Wait until ``ready`` says yes; raise :class:`ComponentFailed` (and stop the process) otherwise.

        ``pid`` is the one :meth:`spawn` returned (default: read from the pid file).
        """
        limit = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        delay = 0.1
        pid = pid if pid is not None else self.pid()
        if pid is None:
            raise self.failed("process is not running")
        while True:
            _reap(pid)
            if not _pid_alive(pid):
                code = _EXIT_CODES.get(pid)
                suffix = f" with exit code {code}" if code is not None else ""
                self.pid_path.unlink(missing_ok=True)
                raise self.failed(f"process exited during start{suffix}")
            if self.is_ready():
                return
            if time.monotonic() >= deadline:
                error = self.failed(f"not ready after {limit:g} s")
                self.stop()
                raise error
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def start(self) -> None:
        """Idempotent: leave a healthy process alone, otherwise start it and wait until it is ready."""
        self.wait_ready(pid=self.spawn())

    def stop(self) -> bool:
        """SIGTERM the process group, wait up to ``stop_timeout``, then SIGKILL. True if something was stopped."""
        pid = self.pid() or self.adopt()
        if pid is None:
            return False
        self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline:
            _reap(pid)
            if not _pid_alive(pid):
                break
            time.sleep(0.1)
        else:
            self._signal(pid, signal.SIGKILL)
            kill_deadline = time.monotonic() + 10
            while time.monotonic() < kill_deadline:
                _reap(pid)
                if not _pid_alive(pid):
                    break
                time.sleep(0.1)
        self.pid_path.unlink(missing_ok=True)
        return True

    def restart(self) -> None:
        self.stop()
        self.start()

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            pass
