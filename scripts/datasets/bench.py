"""Materialisation benchmark (`make bench-dataset`): instances/s of the materialiser next to a plain copy.

Starts only the research Orthanc of a `bench` stack profile (its own ports and state), stores synthetic instances in
it over REST (de-identification is not measured here), then materialises one dataset of all of them with the
materialiser's own code (research Orthanc series archives → staging → hashes → BagIt → read-only → rename), then
again with one request per instance (archives off, as before decision 0130), and, in the same run, copies the very
files it wrote with `cp -r` and hard-links them with `cp -al`. Prints one table.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from eucaim_node.cli.sample import SamplePatient, write_sample_study
from eucaim_node.datasets import Dataset, StudyRef
from eucaim_node.datasets.layout import DatasetRoot
from eucaim_node.datasets.memory import MemoryStore
from eucaim_node.materialiser.adapters.research import ResearchOrthancSource
from eucaim_node.materialiser.core.materialise import Materialiser
from eucaim_node.orthanc import OrthancClient, OrthancEndpoint
from eucaim_node.stack import PORT_FIELDS, Stack, StackSettings

BENCH_PORT_SHIFT = 20000


class NoClinicalData:
    async def eforms(self, subjects):
        return {}


async def _noop(event) -> None:
    return None


def bench_stack() -> Stack:
    # Moved by the caller's EUCAIM_TEST_PORT_SHIFT too, and named after the shift: two checkouts benchmarking at
    # once on one machine get their own ports and state (as scripts/bench/pipeline.py).
    shift = int(os.environ.get("EUCAIM_TEST_PORT_SHIFT", "0")) + BENCH_PORT_SHIFT
    base = StackSettings()
    name = "bench" if shift == BENCH_PORT_SHIFT else f"bench{shift}"
    return Stack(StackSettings(name=name, **{f: getattr(base, f) + shift for f in PORT_FIELDS}))


def store_instances(stack: Stack, files: list[Path]) -> None:
    auth = stack.orthanc_auth("research")
    with httpx.Client(base_url=stack.orthanc_url("research"), auth=auth, timeout=60) as client:
        for path in files:
            client.post("/instances", content=path.read_bytes(),
                        headers={"content-type": "application/dicom"}).raise_for_status()


def timed_copy(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


async def materialise(stack: Stack, refs: list[StudyRef], root: Path, concurrency: int,
                      series_archives: bool = True) -> tuple[float, Path]:
    user, password = stack.orthanc_auth("research")
    client = OrthancClient(OrthancEndpoint(stack.orthanc_url("research"), user, password))
    store = MemoryStore()
    dataset = Dataset(id="0d6a1f5e-4c3b-4a2e-9f10-2b3c4d5e6f70", name="bench", author="bench",
                      provenance={"kind": "studies"}, studies=tuple(refs))
    await store.insert(dataset)
    materialiser = Materialiser(store, ResearchOrthancSource(client), NoClinicalData(), DatasetRoot(root), _noop,
                                concurrency=concurrency, series_archives=series_archives)
    started = time.perf_counter()
    await materialiser.run_once()
    elapsed = time.perf_counter() - started
    done = await store.get(dataset.id)
    assert done is not None and done.hashes is not None, "materialisation did not finish"
    return elapsed, DatasetRoot(root).dataset_dir(dataset.id)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=5)
    parser.add_argument("--instances-per-series", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=6)
    args = parser.parse_args()
    stack = bench_stack()
    stack.start("orthanc-research")
    try:
        with tempfile.TemporaryDirectory(prefix="eucaim-bench-dataset-") as tmp:
            work = Path(tmp)
            refs, files = [], []
            for n in range(args.studies):
                subject = f"BENCH-{hashlib.sha256(str(n).encode()).hexdigest()[:20]}"
                sample = write_sample_study(work / "src" / str(n), patient=SamplePatient(patient_id=subject),
                                            series=2, instances_per_series=args.instances_per_series,
                                            seed=f"bench-dataset-{n}")
                refs.append(StudyRef(study_uid=sample.study_instance_uid, subject=subject, collection_id="bench",
                                     series=sample.series_instance_uids))
                files += sample.files
            store_instances(stack, files)
            instances = len(files)
            seconds, dataset_dir = asyncio.run(materialise(stack, refs, work / "root", args.concurrency))
            # The same dataset again without archives (decision 0130: one request per instance, as before).
            singly, _ = asyncio.run(materialise(stack, refs, work / "root-singly", args.concurrency, False))
            dicoms = [p for p in dataset_dir.rglob("*.dcm")]
            size = sum(p.stat().st_size for p in dicoms)
            copy = timed_copy(["cp", "-r", str(dataset_dir), str(work / "copy")])
            link = timed_copy(["cp", "-al", str(dataset_dir), str(work / "links")])
            shutil.rmtree(work / "copy")
            rows = [("materialiser (series archives → files, hashes, BagIt, read-only)", seconds),
                    ("materialiser, one request per instance (SERIES_ARCHIVES=false)", singly),
                    ("cp -r of the same files", copy), ("cp -al (hard links) of the same files", link)]
            print(f"{instances} instances, {size / 1e6:.1f} MB, {len(refs)} studies; download concurrency "
                  f"{args.concurrency}")
            print(f"| {'step':64} | {'seconds':>8} | {'instances/s':>11} | {'÷ cp -r':>7} |")
            print(f"|{'-' * 66}|{'-' * 10}:|{'-' * 12}:|{'-' * 8}:|")
            for label, elapsed in rows:
                print(f"| {label:64} | {elapsed:8.2f} | {instances / elapsed:11.0f} | {elapsed / copy:6.1f}× |")
            assert len(dicoms) == instances, (len(dicoms), instances)
    finally:
        stack.stop("orthanc-research")
    return 0


if __name__ == "__main__":
    sys.exit(main())
