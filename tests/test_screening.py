"""Breast, lung and prostate screening as the EUCAIM explorer asks for them, on the real stack (issue 14).

A screening-shaped corpus is generated and pushed once for the module: breast MG (with and without a coded
body part), breast MR, low-dose chest CT coded CHEST and THORAX, prostate MR coded PROSTATE and PELVIS, and
diagnostic studies that must *not* be found (a rectal pelvic MR, a cardiac MR coded CHEST, a knee MR).
metadata and catalogue-sync are restarted with the example collections file; the module restores them.

Which studies a query finds is checked twice: the compiled filter run on the catalogue (the exact study set),
and the node's answer over HTTP (counts per collection, exact: suppression at 1 for this module's searches).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from eucaim_node.catalogue.config import bundled_config_path
from eucaim_node.catalogue.search import QueryCompiler
from eucaim_node.cli.main import app as cli
from eucaim_node.cli.sample import SamplePatient
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.events import AccessRecorded
from eucaim_node.store import collections

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BODY_PART = "SNOMEDCT123037004"
BREAST, COLON, LUNG, PELVIS, PROSTATE = ("SNOMEDCT76752008", "SNOMEDCT71854001", "SNOMEDCT39607008",
                                         "SNOMEDCT12921003", "SNOMEDCT41216001")
# label: (sex, age, modality, BodyPartExamined, StudyDescription)
CORPUS = {
    "mg": ("F", "052Y", "MG", "BREAST", "SCREENING MAMMOGRAPHY"),
    "dbt": ("F", "061Y", "MG", "", "DBT TOMOSYNTHESIS"),  # no BodyPartExamined: mammography images the breast
    "breast-mr": ("F", "047Y", "MR", "BREAST", "MRI BREAST BILATERAL"),
    "ldct": ("M", "063Y", "CT", "CHEST", "LOW DOSE CT LUNG SCREENING"),
    "ct-thorax": ("F", "070Y", "CT", "THORAX", "CT THORAX"),
    "prostate-mr": ("M", "066Y", "MR", "PROSTATE", "MPMRI"),
    "prostate-pelvis": ("M", "059Y", "MR", "PELVIS", "PROSTATE MRI"),
    "rectum-mr": ("M", "071Y", "MR", "PELVIS", "RECTUM STAGING MRI"),
    "cardiac-mr": ("F", "058Y", "MR", "CHEST", "CARDIAC MRI"),
    "knee-mr": ("O", "045Y", "MR", "KNEE", "KNEE MRI"),
}
EXPECTED_BY_BODY_PART = {
    BREAST: {"mg", "dbt", "breast-mr"},
    LUNG: {"ldct", "ct-thorax"},
    PROSTATE: {"prostate-mr", "prostate-pelvis"},
    PELVIS: {"prostate-mr", "prostate-pelvis", "rectum-mr"},
    COLON: set(),
}
HYPER = "EUCAIM_Hyper-Ontology_V1.0."
UNHELD = {  # one value of each hyper-ontology key the node holds no data for
    HYPER + "CLIN1045815": HYPER + "COM1001310",  # ER positive
    HYPER + "CLIN1046085": HYPER + "COM1001332",  # PR negative
    HYPER + "CLIN1045851": HYPER + "COM1001882",  # HER2 3+
    HYPER + "CLIN1037294": HYPER + "CLIN1026298",  # Gleason 7
    HYPER + "CLIN1037300": HYPER + "COM1001365",  # ISUP 2
    HYPER + "CLIN1033379": HYPER + "COM1000351",  # cT2
}
ENV_KEYS = ("EUCAIM_COLLECTIONS_FILE", "EUCAIM_SEARCH_PROTECTION", "EUCAIM_SEARCH_MIN_COUNT")


def cond(key: str, ctype: str, value: Any) -> dict[str, Any]:
    return {"key": key, "type": ctype, "system": "urn:snomed-org/sct", "value": value}


def explorer(*conditions: dict[str, Any]) -> dict[str, Any]:
    """The explorer's shape: OR -> AND -> one OR group per condition."""
    return {"ast": {"operand": "OR", "children": [{"operand": "AND", "children": [
        {"operand": "OR", "children": [c]} for c in conditions]}]}, "id": "s__search__s"}


@dataclass
class Corpus:
    stack: Any
    observer: Any
    kafka: Any
    study_keys: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.stack.settings.health_port('catalogue_sync')}"

    def found(self, body: dict[str, Any]) -> set[str]:
        """The corpus studies the node's compiled filter selects in the catalogue."""
        query = QueryCompiler().compile_request(body)
        mine = {"_id": {"$in": sorted(self.study_keys.values())}}
        docs = self.observer.db[collections.CATALOGUE_STUDIES].find({"$and": [mine, query.filter]} if query.filter else mine)
        labels = {key: label for label, key in self.study_keys.items()}
        return {labels[d["_id"]] for d in docs}

    def post(self, body: Any) -> httpx.Response:
        headers = {"content-type": "application/json", "authorization": f"Secret {self.stack.search_token()}"}
        return httpx.post(self.base + "/federation/search", content=json.dumps(body).encode(), headers=headers, timeout=30)

    def search_cli(self, body: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
        query = tmp_path / f"q{time.monotonic_ns()}.json"
        query.write_text(json.dumps(body))
        outcome = []
        thread = threading.Thread(target=lambda: outcome.append(CliRunner().invoke(
            cli, ["search", str(query), "--env-file", str(self.stack.node_env_file())],
            env={**os.environ, "EUCAIM_SEARCH_MIN_COUNT": "1", "EUCAIM_SEARCH_PROTECTION": "suppress"})))
        thread.start()
        thread.join()
        assert outcome[0].exit_code == 0, outcome[0].output
        return json.loads(outcome[0].stdout)

    async def access_events(self) -> list[dict[str, Any]]:
        return [json.loads(v) for _, _, v in await self.kafka.read(AccessRecorded.TOPIC)]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)
    return value


@pytest.fixture(scope="module")
async def corpus(stack, observer, kafka, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("screening")
    env = {"EUCAIM_COLLECTIONS_FILE": str(bundled_config_path("collections.example.yaml")),
           "EUCAIM_SEARCH_PROTECTION": "suppress", "EUCAIM_SEARCH_MIN_COUNT": "1"}
    await kafka.wait_until_idle()
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(env)
    try:
        stack.restart("metadata")
        stack.restart("catalogue_sync")
        seed = f"scr-{os.urandom(3).hex()}"
        study_keys = {}
        for n, (label, (sex, age, modality, body_part, description)) in enumerate(CORPUS.items()):
            patient = SamplePatient(name=f"SCREENPATIENT{n}{seed[-4:].upper()}^ANA", patient_id=f"SCR-{seed}-{n}",
                                    birth_date="19600101", sex=sex, age=age, accession_number=f"ACCSCR-{seed}-{n}")
            sample = push_sample(stack, tmp / label, patient=patient, seed=f"{seed}-{label}", series=1,
                                 instances_per_series=1, modality=modality, body_part=body_part,
                                 study_description=description)
            study_keys[label] = observer.study_key(sample.study_instance_uid)
        keys = sorted(study_keys.values())
        wait_for(lambda: observer.db[collections.CATALOGUE_STUDIES].count_documents({"_id": {"$in": keys}}) == len(keys),
                 180, "the screening corpus to be catalogued")
        await kafka.wait_until_idle()
        yield Corpus(stack, observer, kafka, study_keys)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stack.restart("metadata")
        stack.restart("catalogue_sync")


# -- 1. the explorer's body-part vocabulary ------------------------------------------------------------------------

@pytest.mark.parametrize("value", sorted(EXPECTED_BY_BODY_PART), ids=lambda v: v.removeprefix("SNOMEDCT"))
async def test_each_explorer_body_part_value_finds_what_a_researcher_expects(corpus, tmp_path, value):
    assert corpus.found(explorer(cond(BODY_PART, "EQUALS", value))) == EXPECTED_BY_BODY_PART[value]


async def test_the_answer_counts_the_same_studies_over_http(corpus):
    """The node's own answer (HTTP, suppression at 1) counts per collection what the filter found."""
    answer = corpus.post(explorer(cond(BODY_PART, "EQUALS", LUNG)))
    assert answer.status_code == 200, answer.text
    lung = {c["id"]: c["studies_count"] for c in answer.json()["collections"]}
    docs = corpus.observer.db[collections.CATALOGUE_STUDIES]
    expected: dict[str, int] = {}
    for label in EXPECTED_BY_BODY_PART[LUNG]:
        collection_id = docs.find_one({"_id": corpus.study_keys[label]})["collection_id"]
        expected[collection_id] = expected.get(collection_id, 0) + 1
    # Other modules' studies may be in the same collections: the answer holds at least the corpus' studies.
    assert all(lung.get(c, 0) >= n for c, n in expected.items()), (lung, expected)
    assert docs.find_one({"_id": corpus.study_keys["ldct"]})["body_parts"] == ["CHEST"]  # the raw value is kept


async def test_keys_the_node_lacks_are_answered_and_named_in_the_audit(corpus):
    """ER/PR/HER2, Gleason, ISUP, TNM: 200 with no collection (as the reference node), never 422."""
    for key, value in UNHELD.items():
        response = corpus.post(explorer(cond(BODY_PART, "EQUALS", BREAST), cond(key, "EQUALS", value)))
        assert response.status_code == 200, response.text
        assert response.json()["collections"] == []
    psa = corpus.post(explorer(cond(HYPER + "CLIN1033410", "BETWEEN", {"min": 4, "max": 10})))
    assert psa.status_code == 200 and psa.json()["collections"] == []
    # In an OR beside a held key, the held branch still answers.
    either = {"ast": {"operand": "OR", "children": [cond(BODY_PART, "EQUALS", LUNG), cond(HYPER + "CLIN1033410", "BETWEEN",
                                                                                          {"min": 4, "max": 10})]}}
    assert corpus.found(either) == EXPECTED_BY_BODY_PART[LUNG]
    assert corpus.post(either).json()["total"]["studies_count"] >= 2
    await corpus.kafka.wait_until_idle()
    audited = [e["detail"] for e in await corpus.access_events()
               if e["action"] == "federated-search" and e["outcome"] == "success"]
    named = {k for d in audited for k in (d.get("unanswered_keys") or "").split(",") if k}
    assert set(UNHELD) | {HYPER + "CLIN1033410"} <= named
    assert any(d["unanswered_keys"] == "" for d in audited)  # a query of held keys names none
