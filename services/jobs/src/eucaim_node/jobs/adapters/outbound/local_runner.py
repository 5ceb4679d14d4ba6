"""The local runner: a job is a process tree on this machine, in its own namespaces, with the flavour's limits.

The command is wrapped, outermost first (each a util-linux tool of Debian's ``util-linux`` package):

1. ``sh -c 'echo $$ > <cgroup>/cgroup.procs ...'``: when the node may create cgroups (cgroup v1 ``pids`` and
   ``memory`` hierarchies writable, i.e. it runs as root), the job gets its own: ``pids.max`` bounds a fork bomb
   (RLIMIT_NPROC does not bind root) and ``memory.limit_in_bytes`` the memory of the whole tree;
2. ``setpriv --pdeathsig KILL``: the job dies with the service, never outlives it unwatched;
3. ``prlimit``: RLIMIT_AS (the flavour's memory, per process), RLIMIT_CPU (a backstop past the wall time),
   RLIMIT_FSIZE (no file beyond the disk limit), RLIMIT_NPROC, no core files, at most 256 open files;
4. ``unshare --user --map-root-user --net --mount --pid --fork --kill-child --mount-proc``: a user namespace
   (so the next step may mount, with no privilege on the host), a network namespace with no interface up (no
   network), a mount namespace, a PID namespace whose init is killed when the runner kills the wrapper (so every
   process of the job dies with it, also one that called setsid);
5. a shell script, inside: a tmpfs at the mount root (``/mnt``) holding ``datasets/<id>`` (each dataset
   bind-mounted read-only) and ``sandbox`` (the job's writable directory), the hidden paths (the node's state:
   secrets, databases, Orthanc storage) covered by empty tmpfs, every other mount remounted read-only, fresh tmpfs
   on ``/tmp``, ``/var/tmp`` and ``/dev/shm``; then
6. ``setpriv --no-new-privs --bounding-set -all --inh-caps -all``: the tool runs with no capability at all.

The runner watches the wall time, the sandbox's size and file count, and a cancellation; any of them kills the
process group (SIGKILL), and the PID namespace takes every descendant with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...core.model import Mount
from ...ports import RunPlan, RunRequest, RunResult

log = logging.getLogger("eucaim_node.jobs.local_runner")

CGROUP_V1 = Path("/sys/fs/cgroup")
#: Exit status of a shell-wrapped process killed by a signal (POSIX sh: 128 + signal number; Kubernetes reports the same).
SIGNAL_BASE = 128
_SIGNAL_MEANING = {signal.SIGXFSZ: "a file exceeded the flavour's disk limit (SIGXFSZ)",
                   signal.SIGXCPU: "the job used more CPU time than the flavour allows (SIGXCPU)"}


class IsolationUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalRunnerSettings:
    mount_root: Path = Path("/mnt")
    hide_paths: tuple[Path, ...] = ()
    tmp_mib: int = 64
    max_files: int = 10_000
    poll_seconds: float = 0.2
    cgroups: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)


def probe_isolation() -> None:
    """Raise IsolationUnavailable (with the reason) unless this machine lets the runner create the namespaces."""
    try:
        done = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork",
                               "--kill-child", "--mount-proc", "--", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise IsolationUnavailable(f"unshare could not run: {exc}") from None
    if done.returncode != 0:
        raise IsolationUnavailable("user, network, mount and PID namespaces are not available: "
                                   + done.stderr.decode(errors="replace").strip()[:200])


#: Directories a job gets as fresh, private tmpfs (writable, size-limited), never the host's.
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def _kept_under_scratch(needed: tuple[Path, ...]) -> list[Path]:
    """The top-level directories of the scratch directories that hold a path the job needs (sorted, unique)."""
    kept = set()
    for path in needed:
        for scratch in map(Path, SCRATCH_DIRS):
            if scratch in path.parents:
                kept.add(scratch / path.relative_to(scratch).parts[0])
    return sorted(kept)


class LocalRunner:
    """``isolated=False`` (EUCAIM_JOBS_LOCAL_INSECURE_NO_ISOLATION) keeps the limits and the kill but drops steps 4 to
    6: the job sees the host's network and file system, its datasets as symbolic links. Development only."""

    def __init__(self, settings: LocalRunnerSettings, *, isolated: bool = True) -> None:
        self.settings, self.isolated = settings, isolated

    # -- before the run ---------------------------------------------------------------------------------------------

    def plan(self, request: RunRequest) -> RunPlan:
        request.job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        request.sandbox.mkdir(exist_ok=True, mode=0o700)
        root = self.settings.mount_root if self.isolated else request.job_dir
        if not self.isolated:
            links = request.job_dir / "datasets"
            links.mkdir(exist_ok=True)
            for dataset_id, path in request.datasets.items():
                if not (links / dataset_id).is_symlink():
                    (links / dataset_id).symlink_to(path)
        mounts = [Mount(dataset_id, str(root / "datasets" / dataset_id), True) for dataset_id in request.datasets]
        mounts.append(Mount("sandbox", str(root / "sandbox"), False))
        env = {"DATA_PATH": str(root / "datasets"), "SANDBOX_PATH": str(root / "sandbox"),
               "HOME": str(root / "sandbox"), "TMPDIR": "/tmp" if self.isolated else str(request.sandbox), "PATH": "/usr/local/bin:/usr/bin:/bin",
               "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
               "OMP_NUM_THREADS": str(max(1, int(request.flavour.cpu))),
               "OPENBLAS_NUM_THREADS": str(max(1, int(request.flavour.cpu))), **self.settings.extra_env}
        return RunPlan(mounts=mounts, env=env, command=[*request.tool.local_command(), *request.args])

    def _inner_script(self, request: RunRequest) -> str:
        """The shell script run as root of the job's user namespace: mounts, then exec of the tool, capability-free."""
        s, q = self.settings, shlex.quote
        root = s.mount_root
        lines = ["set -eu", f"mount -t tmpfs -o size=1m,mode=755 eucaim-job {q(str(root))}",
                 f"mkdir -p {q(str(root / 'sandbox'))}",
                 f"mount --bind {q(str(request.sandbox))} {q(str(root / 'sandbox'))}"]
        for dataset_id, path in request.datasets.items():
            target = root / "datasets" / dataset_id
            lines += [f"mkdir -p {q(str(target))}", f"mount --bind -o ro {q(str(path))} {q(str(target))}"]
        for hidden in s.hide_paths:
            lines.append(f"if [ -d {q(str(hidden))} ]; then mount -t tmpfs -o size=4k,mode=000 eucaim-hidden "
                         f"{q(str(hidden))}; fi")
        # The scratch directories get fresh tmpfs (the job's TMPDIR is /tmp), except what the job needs from them:
        # the tool's interpreter and the node's own code when the node is installed under one of them (a CI clone
        # under /tmp). Each such top-level directory is held aside (``--rbind`` keeps its hidden sub-mounts, e.g.
        # the node's state), the tmpfs goes on, and the directory is bound back inside it.
        kept = _kept_under_scratch((Path(request.tool.local_command()[0]), Path(__file__).resolve()))
        held = root / ".held"
        for number, directory in enumerate(kept):
            lines += [f"mkdir -p {q(str(held / str(number)))}",
                      f"mount --rbind {q(str(directory))} {q(str(held / str(number)))}"]
        for scratch in SCRATCH_DIRS:
            lines.append(f"if [ -d {scratch} ]; then mount -t tmpfs -o size={s.tmp_mib}m,mode=1777 eucaim-tmp {scratch}; fi")
        for number, directory in enumerate(kept):
            lines += [f"mkdir -p {q(str(directory))}",
                      f"mount --rbind {q(str(held / str(number)))} {q(str(directory))}",
                      f"umount -l {q(str(held / str(number)))}"]
        if kept:
            lines.append(f"rm -rf {q(str(held))}")
        # Everything else read-only: the host's file system, the datasets, the hidden paths and what was kept.
        writable = sorted({str(root / "sandbox"), *SCRATCH_DIRS})
        lines += [
            "for m in $(awk '{print $5}' /proc/self/mountinfo | sort -u); do",
            "  case \"$m\" in " + "|".join(q(k) for k in writable) + "|/proc|/proc/*) continue;; esac",
            "  mount -o remount,bind,ro \"$m\" 2>/dev/null || [ ! -e \"$m\" ] || "
            "{ echo \"eucaim-node: cannot make a mount read-only\" >&2; exit 97; }",
            "done",
        ]
        lines += [f"cd {q(str(root / 'sandbox'))}",
                  'exec setpriv --no-new-privs --bounding-set -all --inh-caps -all -- "$@"']
        return "\n".join(lines)

    def _cgroup_dirs(self, request: RunRequest) -> list[tuple[Path, dict[str, str]]]:
        if not self.settings.cgroups:
            return []
        flavour = request.flavour
        wanted = [("pids", {"pids.max": str(flavour.max_processes)}),
                  ("memory", {"memory.limit_in_bytes": str(flavour.memory_mib * 1024 * 1024)})]
        dirs = []
        for controller, limits in wanted:
            base = CGROUP_V1 / controller
            if (base / "cgroup.procs").is_file() and os.access(base, os.W_OK):
                dirs.append((base / f"eucaim-job-{request.job_uid}", limits))
        return dirs

    def argv(self, request: RunRequest, plan: RunPlan, cgroups: list[Path]) -> list[str]:
        f = request.flavour
        memory = f.memory_mib * 1024 * 1024
        disk = f.disk_mib * 1024 * 1024
        command = ["setpriv", "--pdeathsig", "KILL", "--",
                   "prlimit", f"--as={memory}", f"--cpu={f.max_seconds + 5}", f"--fsize={disk}",
                   f"--nproc={f.max_processes}", "--core=0", "--nofile=256", "--"]
        if not self.isolated:
            command += plan.command
        else:
            command += ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork",
                        "--kill-child", "--mount-proc", "--",
                        "sh", "-c", self._inner_script(request), "eucaim-job", *plan.command]
        if cgroups:
            joins = "; ".join(f"echo $$ > {shlex.quote(str(c / 'cgroup.procs'))}" for c in cgroups)
            command = ["sh", "-c", f'{joins}; exec "$@"', "eucaim-job-cgroup", *command]
        return command

    # -- the run ----------------------------------------------------------------------------------------------------

    async def run(self, request: RunRequest, plan: RunPlan, cancelled: asyncio.Event) -> RunResult:
        cgroups = await asyncio.to_thread(self._make_cgroups, request)
        try:
            return await self._run(request, plan, cancelled, cgroups)
        finally:
            await asyncio.to_thread(self._remove_cgroups, cgroups)

    async def _run(self, request: RunRequest, plan: RunPlan, cancelled: asyncio.Event,
                   cgroups: list[Path]) -> RunResult:
        flavour = request.flavour
        with request.log.open("ab") as log_file:
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.argv(request, plan, cgroups), stdin=subprocess.DEVNULL, stdout=log_file,
                    stderr=subprocess.STDOUT, cwd=request.job_dir if self.isolated else request.sandbox, env=plan.env,
                    start_new_session=True)
            except OSError as exc:
                return RunResult(None, [f"the job could not be started: {exc.strerror}"])
        started = time.monotonic()
        reason: str | None = None
        while True:
            try:
                await asyncio.wait_for(process.wait(), timeout=self.settings.poll_seconds)
                break
            except TimeoutError:
                pass
            if cancelled.is_set():
                reason = "cancelled (DELETE)"
            elif time.monotonic() - started > flavour.max_seconds:
                reason = f"killed: exceeded the flavour's wall time of {flavour.max_seconds} s"
            else:
                size, files = await asyncio.to_thread(_usage, request.sandbox, self.settings.max_files)
                if size > flavour.disk_mib * 1024 * 1024:
                    reason = f"killed: the sandbox exceeded the flavour's disk limit of {flavour.disk_mib} MiB"
                elif files > self.settings.max_files:
                    reason = f"killed: the sandbox holds more than {self.settings.max_files} files"
            if reason is not None:
                await _kill(process)
                break
        code = process.returncode
        exit_code = SIGNAL_BASE - code if code is not None and code < 0 else code
        if reason is None and code:
            # A write past RLIMIT_FSIZE fails with EFBIG where SIGXFSZ is ignored (Python ignores it): say why.
            size, _ = await asyncio.to_thread(_usage, request.sandbox, self.settings.max_files)
            if size >= flavour.disk_mib * 1024 * 1024:
                reason = f"stopped: the sandbox reached the flavour's disk limit of {flavour.disk_mib} MiB"
        errors = [reason] if reason else []
        if reason is None and code is not None and code < 0:
            errors.append(_SIGNAL_MEANING.get(signal.Signals(-code), f"killed by signal {signal.Signals(-code).name}"))
        elif reason is None and code:
            errors.append(f"the tool exited with code {code}")
        return RunResult(exit_code, errors)

    def _make_cgroups(self, request: RunRequest) -> list[Path]:
        made = []
        for directory, limits in self._cgroup_dirs(request):
            try:
                directory.mkdir(exist_ok=True)
                for name, value in limits.items():
                    (directory / name).write_text(value)
            except OSError as exc:
                log.warning("no cgroup for the job", extra={"cgroup": str(directory), "error": exc.strerror})
                continue
            made.append(directory)
        return made

    @staticmethod
    def _remove_cgroups(cgroups: list[Path]) -> None:
        for directory in cgroups:
            for _ in range(50):  # the killed tasks leave the cgroup a moment after they are reaped
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


async def _kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the job's process group; unshare's --kill-child then takes the whole PID namespace down."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    await process.wait()


def _usage(sandbox: Path, max_files: int) -> tuple[int, int]:
    """Bytes allocated and entries in the sandbox, counting at most ``max_files + 1`` entries."""
    size = files = 0
    stack = [sandbox]
    while stack and files <= max_files:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    files += 1
                    try:
                        stat = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    size += stat.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
        except OSError:
            continue
    return size, files
