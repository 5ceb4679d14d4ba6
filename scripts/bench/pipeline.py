"""Benchmark: the whole node against Orthanc's own ingest + anonymize, on the same files, in the same run.

    uv run python scripts/bench/pipeline.py --studies 8 --instances 100      (make bench-pipeline)

1. Generates ``--studies`` synthetic CT studies of ``--instances`` 512×512 slices each (cached under
   .stack/bench-data), one synthetic patient per study.
2. **Anchor**: a throwaway Orthanc of the same binary, configured like the node's research Orthanc,
   ingests the files (``--clients`` HTTP clients) and then runs its own ``/studies/{id}/anonymize`` on
   every study (as many clients). Timed from the first POST to the last anonymized study.
3. **Node**: a fresh local stack (Kafka, FerretDB, both Orthancs, every service; the test profile, so
   StableAge 2 s) receives the same files by POST to the clinical Orthanc (``--clients`` clients). Timed
   from the first POST until every study is in the catalogue with all its instances.
4. Per-process CPU seconds (``/proc``) during each phase, each process's peak RSS (VmHWM), and with
   ``--profile`` a py-spy flame graph of every Python service (the node phase).
5. **Hot paths** at ``--hot-studies`` studies generated straight into the store: one collection update
   and the federated search (p95 of ``--searches`` queries).

This is a script, not a test: no timing goes into the test suite.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from eucaim_node.catalogue.documents import STUDY
from eucaim_node.cli.sample import SamplePatient, SampleStudy, write_sample_study
from eucaim_node.deid import load_key, pseudonymise_uid
from eucaim_node.stack import PORT_FIELDS, Stack, StackSettings, configs, install
from eucaim_node.store import collections

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Ports of the benchmark's stack: the test profile moved by the caller's EUCAIM_TEST_PORT_SHIFT plus this,
#: so a benchmark never collides with the same checkout's test stack.
BENCH_PORT_OFFSET = 50
ANCHOR_PORT_OFFSET = 70


# -- measuring processes ----------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children (``/proc/PID/stat`` fields 14-17)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(pid: int) -> list[int]:
    """The process and every live descendant (a service may run worker processes)."""
    found, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{parent}/task").iterdir():
                for child in (task / "children").read_text().split():
                    found.append(int(child))
                    frontier.append(int(child))
    return found


class ProcessSet:
    """CPU seconds of named processes over an interval (a process counts its descendants too)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}

    def _cpu(self, name: str) -> float:
        total = 0.0
        for pid in descendants(self.pids[name]):
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def start(self) -> None:
        self._start = {name: self._cpu(name) for name in self.pids}

    def cpu(self) -> dict[str, float]:
        return {name: self._cpu(name) - self._start.get(name, 0.0) for name in self.pids}

    def peak_rss(self) -> dict[str, float]:
        result = {}
        for name, pid in self.pids.items():
            values = []
            for p in descendants(pid):
                with contextlib.suppress(OSError):
                    values.append(peak_rss_mb(p))
            result[name] = sum(values)
        return result


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- the files --------------------------------------------------------------------------------------------------

def generate(root: Path, studies: int, instances: int, size: int, tag: str = "bench") -> list[SampleStudy]:
    """``studies`` studies of one series each (kept on disk between runs: same arguments, same bytes)."""
    result = []
    for n in range(studies):
        seed = f"{tag}-{size}-{instances}-{n}"
        patient = SamplePatient(name=f"BENCH{n:05d}^PATIENT", patient_id=f"BENCH-{n:05d}",
                                accession_number=f"ACC-B{n:05d}")
        dest = root / seed
        done = dest / ".done"
        sample = write_sample_study(dest, patient=patient, seed=seed, series=1, instances_per_series=instances,
                                    size=size) if not done.exists() else None
        if sample is None:  # cached: regenerate only the UIDs (cheap) by writing nothing
            sample = _cached(dest, patient, seed, instances)
        done.touch()
        result.append(sample)
    return result


def _cached(dest: Path, patient: SamplePatient, seed: str, instances: int) -> SampleStudy:
    import pydicom

    files = tuple(sorted(p for p in dest.glob("*.dcm")))
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    if len(files) != instances:
        raise RuntimeError(f"{dest}: {len(files)} files cached, {instances} expected (remove the directory)")
    return SampleStudy(patient, first.StudyInstanceUID, (first.SeriesInstanceUID,), (), files)


def post_all(url: str, auth: tuple[str, str], files: Sequence[Path], clients: int) -> None:
    """POST every file to ``url``/instances from ``clients`` concurrent HTTP clients (one connection each)."""
    chunks = [files[i::clients] for i in range(clients)]

    def send(chunk: Sequence[Path]) -> None:
        with httpx.Client(base_url=url, auth=auth, timeout=120) as client:
            for path in chunk:
                client.post("/instances", content=path.read_bytes(),
                            headers={"Content-Type": "application/dicom"}).raise_for_status()

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, chunks))


# -- the anchor: a throwaway Orthanc running its own anonymizer -------------------------------------------------

@contextlib.contextmanager
def anchor_orthanc(settings: StackSettings, workdir: Path) -> Iterator[tuple[str, tuple[str, str], int]]:
    """An Orthanc of the node's binary, configured as the node's research Orthanc (no DICOM server)."""
    password = "bench-anchor"
    config = configs.render_orthanc_config(settings, "research", password)
    config.update(StorageDirectory=str(workdir / "storage"), IndexDirectory=str(workdir / "index"))
    (workdir / "orthanc.json").write_text(json.dumps(config))
    log = (workdir / "orthanc.log").open("wb")
    process = subprocess.Popen([str(install.ORTHANC_BINARY), str(workdir / "orthanc.json")], cwd=workdir,
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{settings.host}:{config['HttpPort']}"
    auth = (configs.orthanc_username(settings, "research"), password)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/system", auth=auth, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the anchor Orthanc did not start: see {workdir / 'orthanc.log'}")
            time.sleep(0.2)
        yield url, auth, process.pid
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def run_anchor(settings: StackSettings, studies: list[SampleStudy], clients: int, workdir: Path) -> dict:
    with anchor_orthanc(settings, workdir) as (url, auth, pid):
        processes = ProcessSet({"anchor-orthanc": pid})
        processes.start()
        started = time.monotonic()
        post_all(url, auth, [f for s in studies for f in s.files], clients)
        ingested = time.monotonic()
        with httpx.Client(base_url=url, auth=auth, timeout=600) as client:
            ids = client.get("/studies").json()

        def anonymize(study_id: str) -> None:
            with httpx.Client(base_url=url, auth=auth, timeout=600) as c:
                c.post(f"/studies/{study_id}/anonymize", json={}).raise_for_status()

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            list(pool.map(anonymize, ids))
        finished = time.monotonic()
        return {"seconds": finished - started, "ingest_seconds": ingested - started,
                "cpu": processes.cpu(), "rss": processes.peak_rss()}


# -- the node -----------------------------------------------------------------------------------------------------

def bench_stack(replicas: int = 1) -> Stack:
    shift = int(os.environ.get("EUCAIM_TEST_PORT_SHIFT", "0")) + BENCH_PORT_OFFSET
    base = StackSettings.test_profile()
    # No trace export (as `make up`): the benchmark runs no collector.
    return Stack(StackSettings.test_profile(name=f"bench{shift}", export_traces=False, service_replicas=replicas,
                                            **{f: getattr(base, f) + shift for f in PORT_FIELDS}))


def anchor_settings() -> StackSettings:
    shift = int(os.environ.get("EUCAIM_TEST_PORT_SHIFT", "0")) + ANCHOR_PORT_OFFSET
    base = StackSettings.test_profile()
    return StackSettings.test_profile(name=f"anchor{shift}", **{f: getattr(base, f) + shift for f in PORT_FIELDS})


def node_processes(stack: Stack) -> ProcessSet:
    pids = {}
    for name in stack.names():
        pid = stack.process(name).pid()
        if pid is not None:
            pids[name] = pid
    return ProcessSet(pids)


def wait_catalogued(db, keys: dict[str, int], timeout: float) -> float:
    """Seconds (monotonic clock) at which every study key was catalogued with its expected instance count."""
    deadline = time.monotonic() + timeout
    pending = dict(keys)
    while pending:
        for doc in db[collections.CATALOGUE_STUDIES].find({STUDY.key: {"$in": list(pending)}},
                                                          STUDY.projection(STUDY.instance_count)):
            if doc.get(STUDY.instance_count) == pending[doc["_id"]]:
                del pending[doc["_id"]]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} of {len(keys)} studies not catalogued after {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic()


@contextlib.contextmanager
def profiled(processes: ProcessSet, names: Sequence[str], out: Path, enabled: bool) -> Iterator[None]:
    """py-spy record of each named Python process (subprocesses included) while the block runs."""
    spies = []
    if enabled:
        spy = shutil.which("py-spy")
        if spy is None:
            raise SystemExit("--profile needs py-spy: uv run --with py-spy python scripts/bench/pipeline.py --profile")
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            if name in processes.pids:
                spies.append(subprocess.Popen(
                    [spy, "record", "--subprocesses", "--nonblocking", "--rate", "50", "--format", "speedscope",
                     "-o", str(out / f"{name}.speedscope.json"), "--pid", str(processes.pids[name])],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        yield
    finally:
        for spy_process in spies:
            spy_process.send_signal(2)
        for spy_process in spies:
            spy_process.wait(60)


def run_node(stack: Stack, studies: list[SampleStudy], clients: int, *, profile: Path | None) -> dict:
    key = load_key(stack.hmac_key_file())
    keys = {pseudonymise_uid(s.study_instance_uid, key): len(s.files) for s in studies}
    processes = node_processes(stack)
    mongo = stack.mongo_client()
    db = mongo[stack.settings.mongo_database]
    try:
        processes.start()
        with profiled(processes, [n for n in processes.pids if not n.startswith(("kafka", "ferretdb", "orthanc"))],
                      profile or Path(), profile is not None):
            started = time.monotonic()
            post_all(stack.orthanc_url("clinical"), stack.orthanc_auth("clinical"),
                     [f for s in studies for f in s.files], clients)
            posted = time.monotonic()
            finished = wait_catalogued(db, keys, timeout=600 + 2 * sum(keys.values()))
        return {"seconds": finished - started, "post_seconds": posted - started, "cpu": processes.cpu(),
                "rss": processes.peak_rss()}
    finally:
        mongo.close()


def run_latency(stack: Stack, root: Path, size: int) -> float:
    """Seconds from the last instance of a 20-instance study reaching the clinical Orthanc to its catalogue entry."""
    (study,) = generate(root, 1, 20, size, tag="latency")
    key = pseudonymise_uid(study.study_instance_uid, load_key(stack.hmac_key_file()))
    mongo = stack.mongo_client()
    try:
        post_all(stack.orthanc_url("clinical"), stack.orthanc_auth("clinical"), study.files, 1)
        last = time.monotonic()
        return wait_catalogued(mongo[stack.settings.mongo_database], {key: 20}, timeout=300) - last
    finally:
        mongo.close()


# -- report -------------------------------------------------------------------------------------------------------

def report(args, anchor: dict, node: dict, instances: int, extra: dict) -> str:
    anchor_rate = instances / anchor["seconds"]
    node_rate = instances / node["seconds"]
    lines = [
        f"pipeline benchmark: {args.studies} studies × {args.instances} instances ({args.size}×{args.size} CT), "
        f"{args.clients} clients, {args.replicas} replica(s) of anonymisation and metadata; "
        f"Python {platform.python_version()}, {os.cpu_count()} cores",
        f"load average before: {extra['load_before']}, after: {load_average()}",
        "",
        "| run | seconds | instances/s |",
        "|---|---:|---:|",
        f"| Orthanc ingest + its own /anonymize (mean of {' and '.join(f'{r:.1f}' for r in anchor['runs'])} s, "
        f"ingest {anchor['ingest_seconds']:.1f} s) | {anchor['seconds']:.1f} | {anchor_rate:.1f} |",
        f"| node end to end (POSTs done at {node['post_seconds']:.1f} s) | {node['seconds']:.1f} | {node_rate:.1f} |",
        f"| **node ÷ Orthanc** | | **{node_rate / anchor_rate:.2f}×** |",
        "",
        "| process | CPU s (node run) | peak RSS MB |",
        "|---|---:|---:|",
    ]
    for name in sorted(node["cpu"], key=lambda n: -node["cpu"][n]):
        lines.append(f"| {name} | {node['cpu'][name]:.1f} | {node['rss'][name]:.0f} |")
    lines.append(f"| anchor-orthanc (anchor run) | {anchor['cpu']['anchor-orthanc']:.1f} | "
                 f"{anchor['rss']['anchor-orthanc']:.0f} |")
    for title, rows in extra.get("sections", []):
        lines += ["", title, *rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=8)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--profile", type=Path, default=None, help="write py-spy profiles of the services here")
    parser.add_argument("--keep", action="store_true", help="leave the node's stack running afterwards")
    parser.add_argument("--hot-studies", type=int, default=0, help="studies generated into the store for the hot-path figures (0: none)")
    parser.add_argument("--searches", type=int, default=100)
    parser.add_argument("--skip-pipeline", action="store_true", help="only the hot-path figures")
    parser.add_argument("--replicas", type=int, choices=(1, 2), default=1,
                        help="processes of anonymisation and of metadata in the node (decision 0093)")
    args = parser.parse_args(argv)

    data = Path(".stack/bench-data")
    studies = [] if args.skip_pipeline else generate(data, args.studies, args.instances, args.size)
    instances = sum(len(s.files) for s in studies)
    extra: dict = {"load_before": load_average(), "sections": []}

    stack = bench_stack(args.replicas)
    stack.reset()
    stack.up(services=True)
    try:
        # The anchor runs before and after the node (load from other work on the machine drifts): the mean counts.
        anchors = []
        for position in () if args.skip_pipeline else ("before", "after"):
            if position == "after":
                node = run_node(stack, studies, args.clients, profile=args.profile)
            with tempfile.TemporaryDirectory(prefix="anchor-", dir=".stack") as workdir:
                anchors.append(run_anchor(anchor_settings(), studies, args.clients, Path(workdir).resolve()))
        if anchors:
            anchor = {"seconds": statistics.mean(a["seconds"] for a in anchors),
                      "runs": [a["seconds"] for a in anchors], "cpu": anchors[0]["cpu"], "rss": anchors[0]["rss"],
                      "ingest_seconds": statistics.mean(a["ingest_seconds"] for a in anchors)}
        if not args.skip_pipeline:
            latency = run_latency(stack, data, args.size)
            extra["sections"].append((f"Latency: a 20-instance study was catalogued {latency:.1f} s after its last "
                                      f"instance arrived (StableAge {stack.settings.stable_age} s; goal: StableAge + 3 s)",
                                      []))
        if args.hot_studies:
            from hot_paths import hot_path_figures

            extra["sections"].append(hot_path_figures(stack, args.hot_studies, args.searches))
    finally:
        if not args.keep:
            stack.down()
    if args.skip_pipeline:
        print("\n".join(line for title, rows in extra["sections"] for line in ["", title, *rows]))
    else:
        print(report(args, anchor, node, instances, extra))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
