"""The job core with the real local runner (namespaces, limits, kill) and fakes of datasets, store and audit."""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from eucaim_node.jobs.adapters.outbound.local_runner import LocalRunner, LocalRunnerSettings
from eucaim_node.jobs.core.catalogue import load_flavours, load_tools
from eucaim_node.jobs.core.egress import LOG_NAME, ReviewRules, output_key, scan_file
from eucaim_node.jobs.core.jobs import JobError, JobService
from eucaim_node.jobs.core.model import Flavour, JobState, report

from .conftest import DATASET_ID, SUBJECT, FakeDatasets, MemoryStore, Records

ROOT = Path(__file__).resolve().parents[3]
TOOLS = load_tools(ROOT / "deploy/local/jobs/tools.json", local=True)
FLAVOURS, DEFAULT = load_flavours(ROOT / "deploy/local/jobs/flavours.json")
RULES = ReviewRules(frozenset({".json", ".csv", ".txt"}), 1 << 20, 5)
STATS, CHECK = "eucaim/series-stats:1.0", "eucaim/sandbox-check:1.0"

#: What the FEM client posts (EUCAIM/k8s-deploy-node fem-client launcher.json, submit_run.body), filled in.
LAUNCHER_BODY = {"jobName": "exec-0001", "image": STATS, "commandArgs": "--modalities CT", "dryRun": False,
                 "resources": "medium-gpu", "datasetsList": DATASET_ID}


def service(tmp_path: Path, dataset: Path, *, grants=None, flavours=None) -> tuple[JobService, Records, FakeDatasets]:
    records = Records()
    datasets = FakeDatasets({DATASET_ID: dataset}, {("alice", DATASET_ID)} if grants is None else grants)
    runner = LocalRunner(LocalRunnerSettings(hide_paths=(tmp_path / "hidden",)))
    jobs = JobService(store=MemoryStore(), datasets=datasets, runner=runner, record=records, tools=TOOLS,
                      flavours=flavours or FLAVOURS, default_flavour=DEFAULT, work_dir=tmp_path / "jobs", rules=RULES)
    return jobs, records, datasets


async def run(jobs: JobService, body: dict, principal: str = "alice"):
    name = (await jobs.submit(principal, body))["jobName"]
    job = await jobs.job(principal, name)
    await jobs.wait(job.uid)
    return await jobs.job(principal, name)


async def test_the_fem_launcher_body_runs_the_example_tool_and_outputs_wait_for_review(tmp_path, dataset):
    jobs, records, _ = service(tmp_path, dataset)
    job = await run(jobs, LAUNCHER_BODY)
    assert job.state == JobState.SUCCESS and job.exit_code == 0, job.errors
    details = report(job, "node")
    assert {"name", "status", "exitCode", "startedAt", "finishedAt", "executionDuration", "errors", "mounts",
            "flavor", "image"} <= set(details)
    assert {(m["mountPath"], m["readOnly"]) for m in details["mounts"]} == {
        (f"/mnt/datasets/{DATASET_ID}", True), ("/mnt/sandbox", False)}
    assert {"name": "DATA_PATH", "value": "/mnt/datasets"} in details["env"]
    sandbox = tmp_path / "jobs" / job.uid / "sandbox"
    [row] = list(csv.DictReader((sandbox / "series_stats.csv").open()))
    assert row["modality"] == "CT" and row["instances"] == "2" and float(row["mean"]) == pytest.approx(26.0)
    outputs = {o["name"]: o for o in job.outputs.values()}
    assert set(outputs) == {"series_stats.csv", "summary.json", LOG_NAME}
    assert outputs["series_stats.csv"]["findings"] == []
    assert [f["kind"] for f in outputs["summary.json"]["findings"]] == ["small-cell"]  # one subject
    assert "held" in await jobs.logs("alice", job.name)
    assert [a for a, _ in records.actions()] == ["job-access-check", "USE_DATASETS", "job-access-check",
                                                 "job-start", "job-end"]
    use = records[1]["detail"]
    assert records[1]["target"] == DATASET_ID and use["job_uid"] == job.uid and use["command_line"] == "--modalities CT" and \
        use["flavour"] == "medium-gpu" and use["tool"] == STATS and use["image"].startswith("sha256:")

    assert json.loads(await jobs.output_bytes(job.uid, "summary.json"))["subjects"] == 1  # what the reviewer reads
    with pytest.raises(JobError) as unknown:
        await jobs.output_bytes(job.uid, "../../../etc/passwd")
    assert unknown.value.status == 404
    with pytest.raises(JobError, match="finding"):
        await jobs.decide("dh", job.uid, ["summary.json"], release=True)
    [released] = await jobs.decide("dh", job.uid, ["series_stats.csv", LOG_NAME][:1], release=True)
    await jobs.decide("dh", job.uid, [LOG_NAME], release=True, despite_findings=True)
    path, digest = await jobs.released_output("alice", job.name, "series_stats.csv")
    assert path.read_bytes() == (sandbox / "series_stats.csv").read_bytes() and digest == released["sha256"]
    with pytest.raises(JobError) as refused:
        await jobs.released_output("alice", job.name, "summary.json")
    assert refused.value.status == 404
    assert "series 1: CT" in await jobs.logs("alice", job.name)
    assert records.actions()[-2:] == [("job-release", "success"), ("job-release", "success")]
    assert records[-2]["detail"]["sha256"] == digest


async def test_a_caller_without_an_open_grant_is_refused_and_the_check_recorded(tmp_path, dataset):
    jobs, records, _ = service(tmp_path, dataset, grants=set())
    with pytest.raises(JobError) as refused:
        await jobs.submit("alice", LAUNCHER_BODY)
    assert refused.value.status == 403
    assert records.actions() == [("job-access-check", "denied")]
    assert await jobs.store.unfinished() == []


async def test_a_grant_closed_before_the_start_ends_the_job_in_pending_error(tmp_path, dataset):
    jobs, records, datasets = service(tmp_path, dataset)
    name = (await jobs.submit("alice", LAUNCHER_BODY))["jobName"]
    datasets.grants.clear()  # closed between submission and start
    job = await jobs.job("alice", name)
    await jobs.wait(job.uid)
    job = await jobs.job("alice", name)
    assert job.state == JobState.PENDING_ERROR and "no open grant" in job.errors[0]
    assert ("job-access-check", "denied") in records.actions() and ("job-start", "success") not in records.actions()


@pytest.mark.parametrize(("body", "status", "message"), [
    ({**LAUNCHER_BODY, "image": "evil/miner:1.0"}, 400, "not allowed"),
    ({**LAUNCHER_BODY, "image": "no-tag"}, 400, "NAME:TAG"),
    ({**LAUNCHER_BODY, "resources": "huge"}, 400, "unknown resources flavour"),
    ({**LAUNCHER_BODY, "datasetsList": "not-a-uuid"}, 400, "not a dataset id"),
    ({**LAUNCHER_BODY, "datasetsList": "11111111-2222-4333-8444-555555555555"}, 404, "no dataset"),
    ({**LAUNCHER_BODY, "jobName": "Bad_Name"}, 400, "jobName"),
    ({**LAUNCHER_BODY, "env": [{"name": "LD_PRELOAD", "value": "/x"}]}, 400, "env"),
    ({**LAUNCHER_BODY, "privileged": True}, 400, "privileged"),
    ({**LAUNCHER_BODY, "commandArgs": "unterminated 'quote"}, 400, "commandArgs"),
    (["not", "an", "object"], 400, "JSON object"),
])
async def test_bad_submissions_get_a_clear_error(tmp_path, dataset, body, status, message):
    jobs, _, _ = service(tmp_path, dataset)
    with pytest.raises(JobError, match=message) as refused:
        await jobs.submit("alice", body)
    assert refused.value.status == status


async def test_a_job_cannot_write_into_its_dataset(tmp_path, dataset):
    jobs, _, _ = service(tmp_path, dataset)
    job = await run(jobs, {**LAUNCHER_BODY, "commandArgs": f"--output-dir /mnt/datasets/{DATASET_ID}"})
    assert job.state == JobState.ERROR and job.exit_code == 1
    assert "Read-only file system" in (tmp_path / "jobs" / job.uid / "job.log").read_text()
    assert sorted(p.name for p in dataset.iterdir()) == sorted(["eforms.json", "index.json", SUBJECT])


async def test_the_sandbox_holds_against_dataset_host_and_network_escapes(tmp_path, dataset):
    jobs, _, _ = service(tmp_path, dataset)
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / "secret").write_text("s3cret")
    for number, mode in enumerate(("write-dataset", "write-host", "network")):
        job = await run(jobs, {**LAUNCHER_BODY, "jobName": f"check-{number}", "image": CHECK, "commandArgs": mode})
        text = (tmp_path / "jobs" / job.uid / "job.log").read_text()
        assert job.state == JobState.SUCCESS, text
        assert "ALLOWED" not in text and "refused" in text
    assert not (Path("/eucaim-escape")).exists() and not (dataset / "tampered").exists()


SHORT = Flavour("short", cpu=1, memory_mib=1024, max_seconds=2, disk_mib=8, max_processes=16)


@pytest.mark.parametrize(("args", "expected"), [
    ("sleep 600", "wall time"),
    ("fork-bomb", "wall time"),
    ("fill-disk", "disk limit"),
])
async def test_runaway_jobs_are_killed_and_reported(tmp_path, dataset, args, expected):
    jobs, records, _ = service(tmp_path, dataset, flavours={**FLAVOURS, "short": SHORT})
    # A marker the tool ignores, so that the check below finds this job's processes only (other test runs on
    # the machine may run the same tool at the same time).
    marker = f"eucaim-test-{uuid.uuid4().hex}"
    job = await run(jobs, {**LAUNCHER_BODY, "image": CHECK, "commandArgs": f"{args} {marker}", "resources": "short"})
    assert job.state == JobState.ERROR and any(expected in e for e in job.errors), job.errors
    assert job.exit_code is not None and job.exit_code != 0
    assert records.actions()[-1] == ("job-end", "failure")
    if args == "fork-bomb":
        assert "fork refused after" in (tmp_path / "jobs" / job.uid / "job.log").read_text()
    # Nothing of the job is left running: its PID namespace died with it.
    assert not any(marker in _command_line(p) for p in Path("/proc").glob("[0-9]*/cmdline"))


def _command_line(path: Path) -> str:
    """A process's command line, or "" when it ended (or is not ours to read) meanwhile."""
    try:
        return path.read_bytes().decode(errors="replace")
    except OSError:
        return ""


async def test_delete_kills_a_running_job(tmp_path, dataset):
    jobs, records, _ = service(tmp_path, dataset)
    name = (await jobs.submit("alice", {**LAUNCHER_BODY, "image": CHECK, "commandArgs": "sleep 600"}))["jobName"]
    job = await jobs.job("alice", name)
    while job.state == JobState.PENDING:
        await jobs.store.by_uid(job.uid)
        job = await jobs.job("alice", name)
        import asyncio

        await asyncio.sleep(0.05)
    await jobs.cancel("alice", name)
    job = await jobs.job("alice", name)
    assert job.state == JobState.ERROR and job.errors == ["cancelled (DELETE)"]
    assert ("job-cancel", "success") in records.actions()


def test_findings(tmp_path):
    identifiers = frozenset({SUBJECT})
    files = {
        "ct.dcm": b"\0" * 128 + b"DICM" + b"\0" * 64,
        "mask.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 32,
        "dates.txt": b"scanned on 2024-03-05\n",
        "names.csv": b"name,value\nDOE^JOHN,1\n",
        "pseudonym.json": json.dumps({"subject": SUBJECT}).encode(),
        "table.csv": b"site,patients\nA,3\nB,12\n",
        "weights.bin": b"\x00\x01\x02",
        "clean.csv": b"modality,series,mean\nCT,1,26.0\n",
    }
    kinds = {}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        kinds[name] = {f.kind for f in scan_file(tmp_path / name, name, RULES, identifiers)}
    assert "dicom" in kinds["ct.dcm"] and "image" in kinds["mask.png"]
    assert kinds["dates.txt"] == {"phi-pattern"} and kinds["names.csv"] == {"phi-pattern"}
    assert kinds["pseudonym.json"] == {"subject-identifier"} and kinds["table.csv"] == {"small-cell"}
    assert kinds["weights.bin"] == {"type", "binary"} and kinds["clean.csv"] == set()
    (tmp_path / "link.csv").symlink_to(tmp_path / "clean.csv")
    assert [f.kind for f in scan_file(tmp_path / "link.csv", "link.csv", RULES, identifiers)] == ["type"]


async def test_an_output_changed_after_listing_is_not_released(tmp_path, dataset):
    jobs, _, _ = service(tmp_path, dataset)
    job = await run(jobs, LAUNCHER_BODY)
    (tmp_path / "jobs" / job.uid / "sandbox" / "series_stats.csv").write_text("swapped\n")
    with pytest.raises(JobError, match="changed since"):
        await jobs.decide("dh", job.uid, ["series_stats.csv"], release=True)
    assert job.outputs[output_key("series_stats.csv")]["decision"] == "pending"


def test_a_changed_tool_is_not_run(tmp_path):
    tool = replace(TOOLS[STATS], digest="sha256:" + "0" * 64)
    from eucaim_node.jobs.core.jobs import _tool_changed

    assert "changed on disk" in _tool_changed(tool) and _tool_changed(TOOLS[STATS]) is None


#: Run by the job: /tmp and $TMPDIR are its own and writable, the host's /tmp is not there, and a directory kept
#: from the host's /tmp (where the node is installed) stays read-only.
SCRATCH_PROBE = """
import os, sys
canary, kept = sys.argv[1], sys.argv[2]
for place in ("/tmp", os.environ["TMPDIR"], "/var/tmp", "/dev/shm"):
    try:
        open(os.path.join(place, "scratch.txt"), "w").write("x")
        print(place, "writable")
    except OSError as exc:
        print(place, "refused", exc.strerror)
print("canary", "visible" if os.path.exists(canary) else "hidden")
try:
    open(os.path.join(kept, "tampered"), "w").write("x")
    print("kept", "ALLOWED")
except OSError as exc:
    print("kept", "refused", exc.strerror)
"""


async def test_a_node_installed_under_tmp_runs_its_tools_with_a_private_writable_tmp(tmp_path):
    """A node checked out under /tmp (as a CI clone is): the tool's interpreter there stays visible, read-only,
    while the job's /tmp is a fresh tmpfs of its own (the host's other files in /tmp are not there)."""
    import asyncio
    import os
    import sys

    from eucaim_node.jobs.core.catalogue import Tool
    from eucaim_node.jobs.ports import RunRequest

    install = Path("/tmp") / f"eucaim-node-install-{uuid.uuid4().hex[:12]}"
    canary = Path("/tmp") / f"eucaim-canary-{uuid.uuid4().hex[:12]}"
    try:
        (install / "bin").mkdir(parents=True)
        (install / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
        canary.write_text("host file")
        tool = Tool("probe", "1.0", "scratch probe", (str(install / "bin" / "python"), "-I", "-c", SCRATCH_PROBE),
                    None, None)
        request = RunRequest(job_uid=uuid.uuid4().hex, tool=tool, args=[str(canary), str(install)],
                             flavour=FLAVOURS[DEFAULT], datasets={}, job_dir=tmp_path / "job")
        runner = LocalRunner(LocalRunnerSettings())
        result = await runner.run(request, runner.plan(request), asyncio.Event())
        text = request.log.read_text()
        assert result.exit_code == 0, text
        for place in ("/tmp", "/var/tmp", "/dev/shm"):
            assert f"{place} writable" in text, text
        assert "canary hidden" in text and "kept refused Read-only file system" in text, text
        assert not (install / "tampered").exists()
    finally:
        canary.unlink(missing_ok=True)
        (install / "bin" / "python").unlink(missing_ok=True)
        for directory in (install / "bin", install):
            if directory.exists():
                directory.rmdir()
