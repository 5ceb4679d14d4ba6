"""Tier 3 datasets end to end on the real stack (issue 10): storescu → research Orthanc → catalogue, then
`eucaim-node dataset create --query` → materialiser → verify, JSON Schemas, BagIt, tamper, lifecycle, grants,
ledger records, consent withdrawal checked on disk, and a SIGKILL of the materialiser mid-way."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path

import bagit
import httpx
import jsonschema
import pydicom
import pytest
from rdflib import Graph, Literal
from rdflib.namespace import DCTERMS
from typer.testing import CliRunner

from eucaim_node.catalogue.dcat import DCAT3, HEALTHDCATAP
from eucaim_node.catalogue.shacl import validate
from eucaim_node.cli.main import app as cli
from eucaim_node.cli.sample import SamplePatient
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.datasets import Creation, Dataset, MongoDatasetStore, State, holds_open_grant, materialised_path
from eucaim_node.datasets.layout import DatasetRoot
from eucaim_node.deid import load_key, pseudonymise_patient_id
from eucaim_node.materialiser.adapters.research import ResearchOrthancSource
from eucaim_node.materialiser.ports import SourceMismatch
from eucaim_node.orthanc import OrthancClient, OrthancEndpoint
from eucaim_node.store import collections

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "docs" / "schemas"


def manufacturer_query(vendor: str) -> dict:
    """The explorer's AST: manufacturer CONTAINS <vendor> (each run its own vendor, so only its studies match)."""
    return {"ast": {"operand": "OR", "children": [{"operand": "AND", "children": [{"operand": "OR", "children": [
        {"key": "C25392", "type": "CONTAINS", "system": "", "value": vendor}]}]}]}, "id": "q__datasets"}


class Node:
    def __init__(self, stack, observer, tmp: Path, wait_for) -> None:
        self.stack, self.observer, self.tmp = stack, observer, tmp
        self.wait_for = wait_for
        self.root = DatasetRoot(stack.node_env()["EUCAIM_DATASET_ROOT"])

    def cli(self, *args: str, code: int | None = 0):
        """The CLI as an operator runs it (own thread: its asyncio.run() needs no loop around it)."""
        out = []
        thread = threading.Thread(target=lambda: out.append(CliRunner().invoke(
            cli, [*args, "--env-file", str(self.stack.node_env_file())])))
        thread.start()
        thread.join()
        result = out[0]
        if code is not None:
            assert result.exit_code == code, f"exit {result.exit_code}: {result.output}"
        return result

    def dataset(self, dataset_id: str) -> Dataset:
        doc = self.observer.db[collections.DATASETS].find_one({"_id": dataset_id})
        assert doc is not None, dataset_id
        return Dataset.from_document(doc)

    def push(self, label: str, seed: str, *, series: int = 2, per_series: int = 2, vendor: str) -> tuple[str, str, str]:
        """(patient ID, subject key, study key) of a synthetic patient sent with storescu."""
        patient = SamplePatient(name=f"DSPATIENT{label}^{seed[-4:].upper()}", patient_id=f"DS-{seed}-{label}",
                                birth_date="19610101", accession_number=f"ACCDS-{seed}-{label}")
        sample = push_sample(self.stack, self.tmp / f"{seed}-{label}", patient=patient, seed=f"{seed}-{label}",
                             series=series, instances_per_series=per_series, manufacturer=vendor)
        subject = pseudonymise_patient_id(patient.patient_id, load_key(self.stack.hmac_key_file()),
                                          self.stack.node_env()["EUCAIM_SITE_PREFIX"])
        return patient.patient_id, subject, self.observer.study_key(sample.study_instance_uid)

    def catalogued(self, keys: list[str], instances: int) -> None:
        self.wait_for(lambda: sum(d["instance_count"] for d in self.observer.db[collections.CATALOGUE_STUDIES].find(
            {"_id": {"$in": keys}})) == instances, 240, "the studies to be catalogued")

    def create(self, name: str, query: dict, *extra: str, code: int = 0):
        path = self.tmp / f"{name}.json"
        path.write_text(json.dumps(query))
        return self.cli("dataset", "create", "--name", name, "--query", str(path), *extra, code=code)


def created_id(output: str) -> str:
    return next(line.removeprefix("id: ").strip() for line in output.splitlines() if line.startswith("id: "))


@pytest.fixture(scope="module")
def node(stack, observer, tmp_path_factory, audit_node):
    return Node(stack, observer, tmp_path_factory.mktemp("datasets"), audit_node.wait_for)


def test_define_materialise_verify_lifecycle_grants_and_withdrawal(node):
    seed = f"ds{os.urandom(3).hex()}"
    vendor = f"DSVENDOR{seed.upper()}"
    pushed = {label: node.push(label, seed, vendor=vendor) for label in ("A", "B", "C")}
    node.catalogued([p[2] for p in pushed.values()], 12)

    # define from a query, materialise, verify
    result = node.create(f"lungs-{seed}", manufacturer_query(vendor), "--project", "p1", "--wait", "120")
    dataset_id = created_id(result.stdout)
    assert "created dataset" in result.stdout and "materialised: 14 files" in result.stdout
    dataset = node.dataset(dataset_id)
    assert (len(dataset.studies), dataset.creation, dataset.state) == (3, Creation.DONE, State.DRAFT)
    assert dataset.provenance["kind"] == "query" and dataset.provenance["ast"] == manufacturer_query(vendor)["ast"]
    assert "OK: dataset" in node.cli("dataset", "verify", dataset_id).stdout

    # the layout a EUCAIM tool reads: schemas, DICOM files named by SOPInstanceUID, read-only, bag valid
    top = node.root.dataset_dir(dataset_id)
    index = json.loads((top / "index.json").read_text())
    eforms = json.loads((top / "eforms.json").read_text())
    jsonschema.validate(index, json.loads((SCHEMAS / "dataset-index.schema.json").read_text()))
    jsonschema.validate(eforms, json.loads((SCHEMAS / "dataset-eforms.schema.json").read_text()))
    assert sorted(e["subjectName"] for e in eforms) == sorted(p[1] for p in pushed.values())
    files = sorted(top.rglob("*.dcm"))
    assert len(files) == 12
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert path.name == f"{ds.SOPInstanceUID}.dcm" and path.parent.name == ds.SeriesInstanceUID
        assert path.parent.parent.name == ds.StudyInstanceUID and path.parent.parent.parent.name == ds.PatientID
        assert not os.access(path, os.W_OK) or os.geteuid() == 0
        assert path.stat().st_mode & 0o222 == 0
    bagit.Bag(str(node.root.bag_dir(dataset_id))).validate()
    assert not list(node.root.root.glob(".staging/*"))

    # hostile input: one clear line, non-zero exit
    assert "exists already" in node.create(f"lungs-{seed}", manufacturer_query(vendor), code=2).stderr
    assert "unknown dataset" in node.cli("dataset", "show", "00000000-0000-4000-8000-000000000000", code=2).stderr
    assert "not a dataset ID" in node.cli("dataset", "verify", "../../etc", code=2).stderr
    assert "matches no catalogued study" in node.create(f"none-{seed}", manufacturer_query("NOSUCHVENDOR" + seed),
                                                         code=2).stderr
    assert "only a released version" in node.cli("dataset", "publish", dataset_id, code=2).stderr

    # tamper with one byte: verify names the file; restore it
    victim = files[5]
    original = victim.read_bytes()
    os.chmod(victim.parent, 0o755)
    os.chmod(victim, 0o644)
    victim.write_bytes(original[:200] + bytes([original[200] ^ 1]) + original[201:])
    failed = node.cli("dataset", "verify", dataset_id, code=1)
    assert str(victim.relative_to(top)) in failed.stderr
    victim.write_bytes(original)
    os.chmod(victim, 0o444)
    os.chmod(victim.parent, 0o555)
    node.cli("dataset", "verify", dataset_id)

    # lifecycle: release, never twice; grant; delete refused while access is open
    assert "now released" in node.cli("dataset", "release", dataset_id).stdout
    assert "never changes" in node.cli("dataset", "release", dataset_id, code=2).stderr
    assert "expired" in node.cli("dataset", "grant", dataset_id, "--to", "alice", "--until", "2020-01-01", code=2).stderr
    granted = node.cli("dataset", "grant", dataset_id, "--to", "alice", "--until", "2099-01-01").stdout
    assert "granted alice" in granted
    assert "open access grant" in node.cli("dataset", "delete", dataset_id, code=2).stderr

    async def library_view():
        client = node.stack.mongo_client("cli", asynchronous=True)
        try:
            store = MongoDatasetStore(client[node.stack.settings.mongo_database])
            return (await holds_open_grant(store, "alice", dataset_id), await holds_open_grant(store, "bob", dataset_id),
                    await materialised_path(store, node.root.root, dataset_id))
        finally:
            await client.close()

    assert asyncio.run(library_view()) == (True, False, top)
    grant_id = granted.split("(grant ")[1].rstrip(")\n")
    node.cli("dataset", "revoke", grant_id)
    assert "already closed" in node.cli("dataset", "revoke", grant_id, code=2).stderr

    # the federation API: the dataset-service's REST shape, the search's token, drafts not shown
    base = f"http://127.0.0.1:{node.stack.settings.health_port('catalogue_sync')}"
    auth = {"authorization": f"Secret {node.stack.search_token()}"}
    assert httpx.get(f"{base}/api/datasets", timeout=30).status_code == 401
    assert httpx.get(f"{base}/api/datasets/{dataset_id}", headers={"authorization": "Secret wrong-token-0123456789"},
                     timeout=30).status_code == 401
    listed = httpx.get(f"{base}/api/datasets", headers=auth, timeout=30).json()
    assert dataset_id in [d["id"] for d in listed["list"]] and listed["total"] == len(listed["list"])
    shown = httpx.get(f"{base}/api/datasets/{dataset_id}", headers=auth, timeout=30).json()
    assert (shown["studiesCount"], shown["subjectsCount"], shown["draft"], shown["hash"]["images"]) == (
        3, 3, False, node.dataset(dataset_id).hashes.images)
    assert httpx.get(f"{base}/api/datasets/not-an-id", headers=auth, timeout=30).status_code == 400

    # publish: in the HealthDCAT-AP catalogue, dcat:version, no count for a small cell, zero SHACL violations
    assert "now published" in node.cli("dataset", "publish", dataset_id).stdout
    graph = Graph().parse(data=httpx.get(f"{base}/catalogue", timeout=30).text, format="turtle")
    [published] = [s for s in graph.subjects(DCTERMS.identifier, Literal(dataset_id))]
    assert str(graph.value(published, DCAT3.version)) == "1"
    assert graph.value(published, HEALTHDCATAP.numberOfRecords) is None  # 3 studies: a small cell
    assert validate(graph).violations == ()

    # ledger records with the EUCAIM action names
    def actions():
        return {(r["detail"]["action"], (r["detail"].get("detail") or {}).get("operation"))
                for r in node.observer.db[collections.AUDIT_RECORDS].find({"entity": dataset_id})}
    expected = {("CREATE_DATASET", None), ("CREATE_DATASET", "MATERIALISED"), ("UPDATE_DATASET", "RELEASE"),
                ("UPDATE_DATASET", "PUBLISH"),
                ("UPDATE_DATASET", "GRANT_ACCESS"), ("UPDATE_DATASET", "CLOSE_ACCESS")}
    node.wait_for(lambda: expected <= actions(), 120, f"ledger records {expected}")

    # consent withdrawal of patient A: version invalidated, files gone from disk, successor without A
    patient_id, subject_a, study_a = pushed["A"]
    node.cli("withdraw", "--patient-id", patient_id, "--yes")
    node.wait_for(lambda: node.dataset(dataset_id).invalidation_reason == "withdrawal", 120, "the version to be invalidated")
    successor_id = node.wait_for(lambda: node.dataset(dataset_id).next_id, 120, "a successor")
    successor = node.wait_for(lambda: (d := node.dataset(successor_id)).creation is Creation.DONE and d, 120, "the successor")
    assert (successor.version, successor.previous_id, successor.state) == (2, dataset_id, State.DRAFT)
    assert subject_a not in successor.subjects and len(successor.studies) == 2
    on_disk = [str(p) for p in node.root.root.rglob("*")]
    assert not [p for p in on_disk if subject_a in p or study_a in p], "files of the withdrawn subject remain"
    assert not node.root.dataset_dir(dataset_id).exists() and not node.root.bag_dir(dataset_id).exists()
    assert all(subject_a not in e["subjectName"] for e in json.loads(
        (node.root.dataset_dir(successor_id) / "eforms.json").read_text()))
    node.cli("dataset", "verify", successor_id)
    assert "consent withdrawal" in node.cli("dataset", "reactivate", dataset_id, code=2).stderr
    graph = Graph().parse(data=httpx.get(f"{base}/catalogue", timeout=30).text, format="turtle")
    assert not list(graph.subjects(DCTERMS.identifier, Literal(dataset_id)))  # invalidated: out of the catalogue
    listing = node.cli("dataset", "list").stdout
    assert dataset_id in listing and "invalidated (withdrawal)" in listing and successor_id in listing


def test_a_materialiser_killed_mid_way_finishes_after_restart_with_every_file_once(node, stack, monkeypatch):
    seed = f"dk{os.urandom(3).hex()}"
    vendor = f"DSKILL{seed.upper()}"
    # 20 series of 10 (decision 0130): after the kill some series are complete, one is half-written, the rest
    # untouched, and the restart must finish all three kinds with every file once.
    _, _, study = node.push("K", seed, series=20, per_series=10, vendor=vendor)
    node.catalogued([study], 200)
    # One instance at a time, no archives, so that the kill lands while files are being written; the restart
    # fetches with archives (the default): whole series it finds untouched as archives, the half-done one
    # instance by instance.
    monkeypatch.setenv("EUCAIM_DATASET_DOWNLOAD_CONCURRENCY", "1")
    monkeypatch.setenv("EUCAIM_DATASET_SERIES_ARCHIVES", "false")
    stack.restart("materialiser")
    result = node.create(f"crash-{seed}", manufacturer_query(vendor))
    dataset_id = created_id(result.stdout)
    staging = node.root.staging_dir(dataset_id)
    node.wait_for(lambda: staging.is_dir() and sum(1 for _ in staging.rglob("*.dcm")) >= 20, 60, "files in staging")
    pid = stack.process("materialiser").pid()
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    written = sum(1 for _ in staging.rglob("*.dcm"))
    assert 0 < written < 200 and not node.root.dataset_dir(dataset_id).exists(), written  # killed mid-way
    assert node.dataset(dataset_id).creation is Creation.RUNNING
    monkeypatch.delenv("EUCAIM_DATASET_DOWNLOAD_CONCURRENCY")
    monkeypatch.delenv("EUCAIM_DATASET_SERIES_ARCHIVES")
    stack.start("materialiser")
    node.wait_for(lambda: node.dataset(dataset_id).creation is Creation.DONE, 120, "the dataset to complete")
    top = node.root.dataset_dir(dataset_id)
    files = list(top.rglob("*"))
    dicoms = [p for p in files if p.suffix == ".dcm"]
    assert len(dicoms) == len({p.name for p in dicoms}) == 200
    assert not [p for p in files if p.name.endswith(".part")] and not staging.exists()
    node.cli("dataset", "verify", dataset_id)
    bagit.Bag(str(node.root.bag_dir(dataset_id))).validate()


def test_a_series_archive_of_the_research_orthanc_gives_each_asked_instance_byte_for_byte(node, stack, tmp_path):
    """Decision 0130 on the real Orthanc: the archive's members, named by Orthanc not by UID, land under their own
    SOPInstanceUID with exactly the bytes ``/instances/{id}/file`` gives; one not asked for is dropped, one asked
    for that the archive lacks is not invented; an instance gone from Orthanc is a SourceMismatch (the dataset
    then fails with that reason, see services/materialiser/tests)."""
    seed = f"da{os.urandom(3).hex()}"
    _, _, study = node.push("A", seed, series=1, per_series=4, vendor=f"DSARCH{seed.upper()}")
    node.catalogued([study], 4)
    user, password = stack.orthanc_auth("research")
    client = OrthancClient(OrthancEndpoint(url=stack.orthanc_url("research"), username=user, password=password))
    source = ResearchOrthancSource(client)
    out = tmp_path / "series"

    async def fetch():
        (series_uid, series), = (await source.series_instances(await source.study_id(study))).items()
        wanted = {sop: out / f"{sop}.dcm" for _, sop in series.instances[1:]}
        await source.fetch_series(series, series_uid, wanted | {"2.25.1": out / "2.25.1.dcm"})
        singles = {sop: await client.instance_file(instance_id) for instance_id, sop in series.instances[1:]}
        with pytest.raises(SourceMismatch, match="no longer in the research Orthanc"):
            await source.fetch("00000000-00000000-00000000-00000000-00000000", out / "gone.dcm")
        return singles

    singles = asyncio.run(fetch())
    assert len(singles) == 3
    assert {p.stem: p.read_bytes() for p in out.iterdir()} == singles  # no *.part, no stray member, no 2.25.1
