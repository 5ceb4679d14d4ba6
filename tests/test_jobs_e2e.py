"""Processing jobs on the real stack (issue 11): a study pushed through the node, a dataset defined from it and
materialised (issue 10) and granted, the example tool submitted through the
Jobman API as the FEM client's launcher.json does, polled, reviewed, released and downloaded; a job that writes into
its dataset, one that runs out of time, one cancelled, one without a grant; every step in the ledger, verified.

The FEM client (EUCAIM/k8s-deploy-node, fem-client launcher.json) sends ``POST .../jobman-service/api/v1/jobs`` with
``Content-Type: application/json`` and ``Authorization: Bearer <token>`` and the body ``{"jobName", "image":
"NAME:TAG", "commandArgs": "<one string>", "dryRun": false, "resources": "medium-gpu", "datasetsList": "<id>"}``,
reads ``.jobName`` back, polls ``GET .../jobs/<name>`` (exitCode, startedAt, finishedAt, executionDuration, errors,
mounts[].mountPath/readOnly), ``GET .../jobs/<name>/logs`` (``.stdOut``), ``DELETE .../jobs/<name>`` and
``GET .../images/`` (``.data[].name``, ``.artifacts[].tags[]``, ``.digest``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from eucaim_node.cli.main import app as cli
from eucaim_node.cli.sample import SamplePatient
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.store.collections import AUDIT_RECORDS, CATALOGUE_STUDIES

pytestmark = [pytest.mark.integration]

CLI = str(Path(sys.executable).parent / "eucaim-node")
STATS, CHECK = "eucaim/series-stats:1.0", "eucaim/sandbox-check:1.0"
FINAL = ("SUCCESS", "ERROR", "PENDING_ERROR")


class Node:
    def __init__(self, stack) -> None:
        self.stack = stack
        self.url = stack.jobs_url()
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {stack.jobs_token()}"}

    def submit(self, job_name: str, image: str, command: str, dataset_id: str, resources: str = "medium-gpu",
               headers: dict | None = None) -> httpx.Response:
        body = {"jobName": job_name, "image": image, "commandArgs": command, "dryRun": False,
                "resources": resources, "datasetsList": dataset_id}
        return httpx.post(f"{self.url}/jobs", json=body, headers=headers or self.headers, timeout=30)

    def report(self, name: str) -> dict:
        response = httpx.get(f"{self.url}/jobs/{name}", headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, name: str, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            report = self.report(name)
            if report["status"] in FINAL:
                return report
            time.sleep(0.3)
        raise AssertionError(f"job {name} did not end: {report}")

    def logs(self, name: str) -> str:
        response = httpx.get(f"{self.url}/jobs/{name}/logs", headers=self.headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["stdOut"]

    def cli(self, *args: str, expect: int = 0) -> str:
        """`eucaim-node job ...` as the data holder runs it (in process: no interpreter start per call)."""
        result = CliRunner().invoke(cli, ["job", *args, "--env-file", str(self.stack.node_env_file())])
        assert result.exit_code == expect, result.stdout + result.stderr
        return result.stdout + result.stderr


def dataset_cli(stack, *args: str) -> str:
    """`eucaim-node dataset ...` (issue 10), in its own thread: its asyncio.run() needs no loop around it."""
    out = []
    thread = threading.Thread(target=lambda: out.append(CliRunner().invoke(
        cli, ["dataset", *args, "--env-file", str(stack.node_env_file())])))
    thread.start()
    thread.join()
    assert out[0].exit_code == 0, out[0].stdout + out[0].stderr
    return out[0].stdout


@pytest.fixture(scope="module")
def datasets(stack, observer, tmp_path_factory) -> tuple[str, str]:
    """(granted, not granted): two datasets defined from one query over a study pushed through the node, each
    materialised by the materialiser (issue 10); the first granted to the Jobman API's client `local`."""
    tmp = tmp_path_factory.mktemp("jobs")
    vendor = f"JOBSVENDOR{uuid.uuid4().hex[:8].upper()}"
    patient = SamplePatient(name=f"JOBPATIENT^{vendor[-4:]}", patient_id=f"JOB-{vendor}", birth_date="19600101",
                            accession_number=f"ACCJOB-{vendor}")
    sample = push_sample(stack, tmp / "study", patient=patient, seed=vendor, series=2, instances_per_series=2,
                         manufacturer=vendor)
    key = observer.study_key(sample.study_instance_uid)
    deadline = time.monotonic() + 240
    while not observer.db[CATALOGUE_STUDIES].find_one({"_id": key, "instance_count": 4}):
        assert time.monotonic() < deadline, "the study was not catalogued"
        time.sleep(0.5)
    query = tmp / "query.json"
    query.write_text(json.dumps({"ast": {"operand": "OR", "children": [{"operand": "AND", "children": [
        {"operand": "OR", "children": [{"key": "C25392", "type": "CONTAINS", "system": "", "value": vendor}]}]}]},
        "id": "q__jobs"}))
    ids = []
    for name in ("granted", "not-granted"):
        out = dataset_cli(stack, "create", "--name", f"jobs-{name}-{vendor}", "--query", str(query), "--wait", "120")
        assert "materialised" in out, out
        ids.append(next(line.removeprefix("id: ").strip() for line in out.splitlines() if line.startswith("id: ")))
    assert "granted local" in dataset_cli(stack, "grant", ids[0], "--to", "local", "--until", "2099-01-01")
    return ids[0], ids[1]


@pytest.fixture(scope="module")
def node(stack) -> Node:
    return Node(stack)


@pytest.fixture(scope="module")
def granted(datasets) -> str:
    return datasets[0]


def test_images_lists_the_allowed_tools_as_the_fem_reads_them(node):
    page = httpx.get(f"{node.url}/images/", headers=node.headers, timeout=30).json()
    tools = {(repo["name"], tag): artifact["digest"] for repo in page["data"] for artifact in repo["artifacts"]
             for tag in artifact["tags"]}
    assert set(tools) == {("eucaim/series-stats", "1.0"), ("eucaim/sandbox-check", "1.0")}
    assert all(d.startswith("sha256:") for d in tools.values())
    assert httpx.get(f"{node.url}/images/", timeout=30).status_code == 401
    assert httpx.get(f"{node.url}/images/", headers={"Authorization": "Bearer wrong-token-0123456789"},
                     timeout=30).status_code == 401


def test_the_example_tool_runs_is_reviewed_and_only_released_files_leave(node, granted, stack):
    answer = node.submit("fem-exec-0001", STATS, "--modalities CT", granted)
    assert answer.status_code == 200 and answer.json() == {"jobName": "fem-exec-0001"}, answer.text
    report = node.wait("fem-exec-0001")
    assert report["status"] == "SUCCESS" and report["exitCode"] == 0, report
    assert report["startedAt"] and report["finishedAt"] and report["executionDuration"] is not None
    assert report["errors"] == [] and report["flavor"] == "medium-gpu"
    assert {(m["mountPath"], m["readOnly"]) for m in report["mounts"]} == {
        (f"/mnt/datasets/{granted}", True), ("/mnt/sandbox", False)}
    assert "held" in node.logs("fem-exec-0001")  # the log too waits for review
    listed = httpx.get(f"{node.url}/jobs", headers=node.headers, timeout=30).json()["data"]
    assert {"name": "fem-exec-0001", "uid": report["uid"], "status": "SUCCESS", "createdAt": report["createdAt"],
            "position": 0, "flavor": "medium-gpu"} in listed

    uid = report["uid"]
    listing = node.cli("outputs", uid)
    assert "series_stats.csv" in listing and "summary.json" in listing and "finding small-cell" in listing
    assert "pending" in listing
    download = f"{node.url}/jobs/fem-exec-0001/outputs/series_stats.csv"
    assert httpx.get(download, headers=node.headers, timeout=30).status_code == 404  # not released yet
    assert '"subjects": 1' in node.cli("show", uid, "summary.json")  # the reviewer reads it: one subject
    node.cli("release", uid, "summary.json", expect=1)  # a finding: refused without --despite-findings
    released = node.cli("release", uid, "series_stats.csv")
    assert "released" in released

    response = httpx.get(download, headers=node.headers, timeout=30)
    assert response.status_code == 200
    digest = hashlib.sha256(response.content).hexdigest()
    assert response.headers["x-checksum-sha256"] == digest
    assert response.headers["repr-digest"] == f"sha-256=:{base64.b64encode(bytes.fromhex(digest)).decode()}:"
    assert response.content.decode().splitlines()[0].startswith("modality,series,instances")
    assert len(response.content.decode().splitlines()) == 3  # two CT series
    assert httpx.get(f"{node.url}/jobs/fem-exec-0001/outputs/summary.json", headers=node.headers,
                     timeout=30).status_code == 404
    node.cli("reject", uid, "summary.json", "--reason", "one subject: a small cell")
    node.cli("release", uid, "job.log", "--despite-findings")
    assert "series 2: CT" in node.logs("fem-exec-0001")


def test_a_job_that_writes_into_its_dataset_fails_and_the_dataset_is_unchanged(node, granted, stack):
    root = Path(stack.service_env("jobs")["EUCAIM_DATASET_ROOT"]) / granted
    before = sorted(p.name for p in root.iterdir())
    assert node.submit("writes-dataset", STATS, f"--output-dir /mnt/datasets/{granted}", granted).status_code == 200
    report = node.wait("writes-dataset")
    assert report["status"] == "ERROR" and report["exitCode"] == 1
    log = (Path(stack.service_env("jobs")["EUCAIM_JOBS_WORK_DIR"]) / report["uid"] / "job.log").read_text()
    assert "Read-only file system" in log
    assert sorted(p.name for p in root.iterdir()) == before


def test_a_job_past_its_wall_time_is_killed_and_one_can_be_cancelled(node, granted):
    assert node.submit("too-long", CHECK, "sleep 600", granted, resources="smoke").status_code == 200
    assert node.submit("cancelled", CHECK, "sleep 600", granted, resources="medium").status_code == 200
    deadline = time.monotonic() + 60
    while node.report("cancelled")["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert httpx.delete(f"{node.url}/jobs/cancelled", headers=node.headers, timeout=60).status_code == 200
    cancelled = node.report("cancelled")
    assert cancelled["status"] == "ERROR" and cancelled["errors"] == ["cancelled (DELETE)"]
    report = node.wait("too-long")
    assert report["status"] == "ERROR" and report["exitCode"] == 137
    assert report["errors"] == ["killed: exceeded the flavour's wall time of 5 s"]
    assert 5 <= report["executionDuration"] <= 30


def test_without_a_grant_a_job_is_refused_and_bad_input_gets_a_clear_error(node, datasets):
    ungranted = datasets[1]
    refused = node.submit("no-grant", STATS, "", ungranted)
    assert refused.status_code == 403 and refused.json() == {
        "message": f"you hold no open grant on dataset {ungranted}", "status": 403}
    assert httpx.get(f"{node.url}/jobs/no-grant", headers=node.headers, timeout=30).status_code == 404
    unknown = node.submit("unknown", STATS, "", str(uuid.uuid4()))
    assert unknown.status_code == 404
    assert node.submit("bad-image", "evil/miner:1.0", "", ungranted).status_code == 400
    malformed = httpx.post(f"{node.url}/jobs", content=b"{not json", headers=node.headers, timeout=30)
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["message"]


def test_every_step_is_in_the_ledger_and_it_verifies(node, stack, granted):
    # The audit service's records (services/audit core/records.py): outcome success | serious-failure (failure) |
    # minor-failure (denied); the event's action and detail under ``detail``.
    wanted = {("USE_DATASETS", "success"), ("job-access-check", "success"), ("job-access-check", "minor-failure"),
              ("job-start", "success"), ("job-end", "success"), ("job-end", "serious-failure"),
              ("job-cancel", "success"), ("job-release", "success"), ("job-reject", "success")}
    client = stack.mongo_client(asynchronous=False)
    try:
        records = client[stack.settings.mongo_database][AUDIT_RECORDS]
        query = {"action": "AccessRecorded", "detail.action": {"$in": sorted({a for a, _ in wanted})}}
        deadline = time.monotonic() + 90
        while True:
            found = {(r["detail"]["action"], r["outcome"]) for r in records.find(query)}
            if wanted <= found or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert wanted <= found, wanted - found
        release = records.find_one({"detail.action": "job-release", "detail.detail.file": "series_stats.csv"})
        assert len(release["detail"]["detail"]["sha256"]) == 64 and release["who"] == "reviewer:local-reviewer"
        use = records.find_one({"detail.action": "USE_DATASETS", "detail.detail.job": "fem-exec-0001"})
        assert use["detail"]["detail"]["tool"] == STATS and use["detail"]["detail"]["command_line"] == "--modalities CT"
        assert use["who"] == "jobs-client:local" and use["entity"] == granted
    finally:
        client.close()
    # The audit service signs a head every 60 s and the witness cosigns it: a fresh stack may not have one yet.
    deadline = time.monotonic() + 180
    while True:
        done = subprocess.run([CLI, "audit", "verify", "--env-file", str(stack.node_env_file())], capture_output=True,
                              text=True, timeout=300)
        if done.returncode == 0 or "holds no checkpoint" not in done.stderr or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert done.returncode == 0 and done.stdout.startswith("ledger OK"), done.stdout + done.stderr


async def test_a_users_job_list_is_read_by_owner_from_the_store_not_cut_by_others_newer_jobs(stack, observer):
    """The list of ``GET .../jobs`` is a query by owner: a user's older job is listed even when other users have
    run more jobs since than the list holds (the store filtered the newest jobs of all users before)."""
    from datetime import UTC, datetime, timedelta

    from eucaim_node.jobs.adapters.outbound.store import MongoJobStore
    from eucaim_node.jobs.core.model import Job, JobState
    from eucaim_node.store.collections import JOBS

    seed = uuid.uuid4().hex[:10]
    owner, other = f"list-owner-{seed}", f"list-other-{seed}"
    now = datetime.now(UTC)

    def job(user: str, n: int, age: timedelta) -> Job:
        return Job(uid=f"{seed}-{user}-{n}", name=f"list-{n}", owner=user, image=STATS, tool=STATS, args=[],
                   flavour="medium-gpu", datasets=[], state=JobState.ERROR, created_at=now - age)

    client = stack.mongo_client(asynchronous=True)
    try:
        store = MongoJobStore(client[observer.db.name])
        await store.ensure_indexes()
        mine = [job(owner, 0, timedelta(hours=2)), job(owner, 1, timedelta(hours=1))]
        for j in [*mine, *(job(other, n, timedelta(minutes=n)) for n in range(3))]:
            await store.insert(j)
        assert [j.uid for j in await store.recent(2, owner=owner)] == [mine[1].uid, mine[0].uid]
        assert [j.uid for j in await store.recent(1, owner=owner)] == [mine[1].uid]
        assert not {j.owner for j in await store.recent(3)} & {owner}  # all users' newest three are the other's
    finally:
        await client[observer.db.name][JOBS].delete_many({"_id": {"$regex": f"^{seed}-"}})
        await client.close()
