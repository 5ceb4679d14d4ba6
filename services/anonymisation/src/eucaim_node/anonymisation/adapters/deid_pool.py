"""The de-identification engine in worker processes, one per core (decisions 0090, 0132).

The engine is pure Python and CPU-bound: in threads it runs on one core at a time under the GIL.
Each worker process builds its own :class:`Deidentifier` and its own keep-alive sessions to the clinical and
the research Orthanc once (key, site prefix, profile and the two endpoints with their passwords are sent at
start, as the pool's initargs, never per instance). Per instance it receives the instance's ID, fetches the file,
de-identifies it and, when ``core.instance.deidentify_instance`` allows, stores the result itself: the ~0.5 MB
files no longer cross the process boundary twice, only a small :class:`InstanceOutcome` comes back. Workers are
started with ``spawn``: the service's own threads (event loop, Kafka, telemetry) are never forked. A traced
service's workers set up tracing as the service does (the same OTEL_* environment) and each task carries the
caller's ``traceparent``: their Orthanc requests are spans of the study's trace, as they were in the service.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from eucaim_node.deid import Deidentifier, Profile
from eucaim_node.orthanc import OrthancEndpoint, OrthancSession
from eucaim_node.telemetry import configure_tracing, continuing, current_traceparent

from ..core.instance import deidentify_instance
from ..ports import InstanceOutcome

PR_SET_PDEATHSIG = 1  # prctl(2)
#: Seconds the workers may take to start (import pydicom, build the engine) before the service fails to start.
START_TIMEOUT = 300.0
_engine: Deidentifier | None = None
_clinical: OrthancSession | None = None
_research: OrthancSession | None = None
_all_started = None  # a Barrier of the pool's size: the warm-up holds each worker until all run


def _die_with_the_service(service_pid: int) -> None:
    """Ask Linux to kill this worker when the service dies, even by SIGKILL (``PR_SET_PDEATHSIG``): a worker
    left behind would hold memory (and the key) forever."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown is all there is
        pass
    # The service died before the request was made: the worker was re-parented. Compared with the service's
    # own PID, not with 1: in a container the service itself is PID 1.
    if os.getppid() != service_pid:
        os._exit(1)


def _start_worker(key: bytes, site_prefix: str, profile: Profile, clinical: OrthancEndpoint, research: OrthancEndpoint,
                  traced_as: str | None, barrier, service_pid: int) -> None:
    global _engine, _clinical, _research, _all_started
    _die_with_the_service(service_pid)
    if traced_as:
        configure_tracing(traced_as)  # before the sessions: it instruments requests
    _engine = Deidentifier(key, site_prefix=site_prefix, profile=profile)
    _clinical, _research = OrthancSession(clinical), OrthancSession(research)
    _all_started = barrier


def _deidentify_instance(instance_id: str, study_key: str, cleared_subject: str | None,
                         traceparent: str | None) -> InstanceOutcome | None:
    assert _engine is not None and _clinical is not None and _research is not None, "worker started without its engine"
    # Orthanc's errors travel back as raised (OrthancUnavailable: the message is retried); the pydicom dataset
    # and, once stored, the bytes stay in the worker.
    with continuing(traceparent):
        return deidentify_instance(instance_id, study_key=study_key, cleared_subject=cleared_subject,
                                   fetch=_clinical.instance_file, deidentify=_engine.deidentify, store=_research.store)


def _worker_pid(timeout: float) -> int:
    # Each warm-up task waits for the others: no worker can take two, so every worker runs one.
    _all_started.wait(timeout)
    return os.getpid()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container's cpuset limits), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class DeidentifierPool:
    """``await pool(instance_id, study_key=..., cleared_subject=...)`` fetches, de-identifies and (if cleared)
    stores one instance in a worker process: the port ``DeidentifyInstance``."""

    def __init__(self, key: bytes, *, site_prefix: str, profile: Profile, clinical: OrthancEndpoint,
                 research: OrthancEndpoint, workers: int, traced_as: str | None = None) -> None:
        """``traced_as``: the service name the workers' spans carry (None: the workers set up no tracing)."""
        self.workers = workers
        # Passwords reach the workers only here, as initargs (pickled to them at start; OrthancEndpoint's repr
        # hides them), never with a task.
        self._arguments = (bytes(key), site_prefix, profile, clinical, research, traced_as)
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                   initargs=(*self._arguments, context.Barrier(self.workers), os.getpid()))

    async def start(self) -> set[int]:
        """Start every worker now (each imports pydicom and builds its engine: seconds), not on the first study;
        returns their process IDs."""
        loop = asyncio.get_running_loop()
        return set(await asyncio.gather(*(loop.run_in_executor(self._executor, _worker_pid, START_TIMEOUT)
                                          for _ in range(self.workers))))

    def __repr__(self) -> str:
        return f"DeidentifierPool(workers={self.workers})"

    async def __call__(self, instance_id: str, *, study_key: str, cleared_subject: str | None) -> InstanceOutcome | None:
        executor = self._executor
        try:
            return await asyncio.get_running_loop().run_in_executor(
                executor, _deidentify_instance, instance_id, study_key, cleared_subject, current_traceparent())
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the pool refuses all work from then on. Start a new one for
            # the next messages; this one fails (bounded retries, then the dead-letter topic, decision 0005).
            if self._executor is executor:
                self._executor = self._new_executor()
                executor.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
