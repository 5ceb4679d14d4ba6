"""The de-identification engine in worker processes, one per core (decision 0090).

The engine is pure Python and CPU-bound: in threads it runs on one core at a time under the GIL.
Each worker process builds its own :class:`Deidentifier` once (key, site prefix and profile are sent
at start, never per instance) and receives only the file's bytes. Workers are started with
``spawn``: the service's own threads (event loop, Kafka, telemetry) are never forked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from eucaim_node.deid import DeidResult, Deidentifier, Profile

_engine: Deidentifier | None = None


def _start_worker(key: bytes, site_prefix: str, profile: Profile) -> None:
    global _engine
    _engine = Deidentifier(key, site_prefix=site_prefix, profile=profile)


def _deidentify(data: bytes) -> DeidResult:
    assert _engine is not None, "worker started without its engine"
    # The pydicom dataset stays in the worker: callers use the bytes, and pickling it would double the copy.
    return dataclasses.replace(_engine.deidentify(data), dataset=None)


def _worker_pid(hold: float) -> int:
    import time

    time.sleep(hold)  # keep this worker busy so that the next warm-up task starts another one
    return os.getpid()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container's cpuset limits), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class DeidentifierPool:
    """``await pool(data)`` de-identifies one Part-10 file in a worker process."""

    def __init__(self, key: bytes, *, site_prefix: str, profile: Profile, workers: int) -> None:
        self.workers = workers
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker, initargs=(bytes(key), site_prefix, profile))

    async def start(self) -> set[int]:
        """Start every worker now (each imports pydicom and builds its engine: seconds), not on the first study;
        returns their process IDs."""
        loop = asyncio.get_running_loop()
        return set(await asyncio.gather(*(loop.run_in_executor(self._executor, _worker_pid, 0.2)
                                          for _ in range(self.workers))))

    async def __call__(self, data: bytes) -> DeidResult:
        return await asyncio.get_running_loop().run_in_executor(self._executor, _deidentify, data)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
