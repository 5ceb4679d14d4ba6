"""Breast, lung and prostate screening as the EUCAIM explorer asks for them, on the real stack (issue 14).

A screening-shaped corpus is generated and pushed once for the module: breast MG (with and without a coded
body part), breast MR, low-dose chest CT coded CHEST and THORAX, prostate MR coded PROSTATE and PELVIS, and
diagnostic studies that must *not* be found (a rectal pelvic MR, a cardiac MR coded CHEST, a knee MR); then
real mammograms (Digital Mammography For Presentation) with the four standard views, screening and diagnostic
procedure codes and a screening department, an organised lung-screening CT, and structured reports carrying a
BI-RADS (TID 4200 Assessment Category, CID 6027) and a PI-RADS assessment, through de-identification.
metadata and catalogue-sync are restarted with a screening collections file (the example's rules, collections
``scr-*``); the module restores them.

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
import yaml
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID
from rdflib import Graph, URIRef
from rdflib.namespace import SKOS
from typer.testing import CliRunner

from eucaim_node.catalogue.config import bundled_config_path
from eucaim_node.catalogue.search import QueryCompiler
from eucaim_node.cli.main import app as cli
from eucaim_node.catalogue.shacl import validate
from eucaim_node.cli.sample import SamplePatient, _uid
from eucaim_node.cli.walkthrough import push_sample
from eucaim_node.events import AccessRecorded
from eucaim_node.stack.dicom_tools import storescu
from eucaim_node.store import collections
from eucaim_test_support import search
from eucaim_test_support.search import services_restarted_with
from eucaim_test_support.waiting import wait_for

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
# label: (sex, age, description, [(laterality, view)], procedure code, department, SR assessment item or None)
MAMMOGRAMS = {
    "mg-prog": ("F", "056Y", "MAMMOGRAPHY", "RL", "LN:24606-6", "Breast Screening Programme", None),
    "mg-4views": ("F", "049Y", "MAMMO BILATERAL", "RL", None, None, None),
    "mg-diag": ("F", "063Y", "MAMMO RIGHT", "R", "LN:24605-8", None, None),
    "birads-sr": ("F", "053Y", "MAMMO BILATERAL", "RL", None, None,
                  (("111005", "DCM", "Assessment Category"), ("111174", "DCM", "Suspicious"))),
}
# label: (sex, age, modality, body part, description, SR assessment item)
REPORTED = {
    "ldct-prog": ("M", "064Y", "CT", "CHEST", "LUNG SCREENING PROGRAMME LDCT", None),
    "pirads-sr": ("M", "062Y", "MR", "PELVIS", "PELVIS MRI", (("P", "99LOCAL", "PI-RADS assessment category"),
                                                               ("P3", "99LOCAL", "PI-RADS 3"))),
}
SCREENING_COLLECTIONS = """
catalogue: {base_uri: "https://screening.example.eu/node", title: Screening test node, description: Screening corpus}
defaults:
  publisher: {name: Example Hospital, email: research@example.eu}
  hdab: {name: HDAB, email: hdab@example.eu}
  contact_point: {name: Office, email: research@example.eu}
  access_rights: NON_PUBLIC
  applicable_legislation: [http://data.europa.eu/eli/reg/2025/327/oj]
  legal_basis: GDPR Art. 9(2)(j)
  keywords: [screening]
  provenance: Synthetic screening corpus.
  health_categories: [EHRS]
  language: ENG
  country: FRA
  access_url: https://hdab.example.eu/apply
collections:
  - {id: scr-breast, title: Breast, description: Mammography, condition: {code: SNOMEDCT254837009, label: Breast cancer},
     rules: [{modalities: [MG]}]}
  - {id: scr-lung, title: Lung, description: LDCT, condition: {code: SNOMEDCT363358000, label: Lung cancer},
     rules: [{modalities: [CT], body_parts: [CHEST, LUNG], description_keywords: [LOW DOSE, LDCT, SCREENING]}]}
  - {id: scr-prostate, title: Prostate, description: Prostate MR, condition: {code: SNOMEDCT399068003, label: Prostate cancer},
     rules: [{modalities: [MR], body_parts: [PROSTATE]}, {modalities: [MR], description_keywords: [PROSTATE]}]}
  - {id: scr-other, title: Other MR, description: MR without a fixed condition, rules: [{modalities: [MR]}]}
  - {id: default, title: Other, description: Everything else}
"""
EXPECTED_BY_BODY_PART = {
    BREAST: {"mg", "dbt", "breast-mr", *MAMMOGRAMS},
    LUNG: {"ldct", "ct-thorax", "ldct-prog"},
    PROSTATE: {"prostate-mr", "prostate-pelvis"},
    PELVIS: {"prostate-mr", "prostate-pelvis", "rectum-mr", "pirads-sr"},
    COLON: set(),
}
DIAGNOSIS, PROGRAMME, ASSESSMENT = "SNOMEDCT439401001", "programme", "EUCAIM_Hyper-Ontology_V1.0.IMG1005459"
EXPECTED_BY_DIAGNOSIS = {
    "SNOMEDCT254837009": {"mg", "dbt", *MAMMOGRAMS, "breast-mr"},  # breast MR: in scr-other, from its region
    "SNOMEDCT363358000": {"ldct", "ldct-prog"},  # ct-thorax: no screening, no lung collection: not lung cancer
    "SNOMEDCT399068003": {"prostate-mr", "prostate-pelvis", "pirads-sr"},  # pirads-sr: from its report
}
EXPECTED_BY_PROGRAMME = {
    "organised-screening": {"mg-prog", "ldct-prog"},  # department rule; description rule
    "opportunistic-screening": {"mg", "ldct", "mg-4views", "birads-sr"},  # "SCREENING" rule; the four views
    "diagnostic": {"mg-diag", "rectum-mr"},  # diagnostic procedure code; "STAGING" rule
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
_MAMMOGRAPHY = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image Storage - For Presentation
_COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
_VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _instance(patient: SamplePatient, seed: str, sop_class: str, modality: str, series: int, number: int, *,
              description: str, procedure: str | None, department: str | None) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = _uid(seed, "sop", series, number)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = _uid(seed, "study"), _uid(seed, "series", series)
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240610"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "093000"
    ds.AccessionNumber, ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = patient.accession_number, "1", series, number
    ds.Modality, ds.Manufacturer, ds.StudyDescription = modality, "HOLOGIC", description
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = patient.name, patient.patient_id, patient.birth_date
    ds.PatientSex, ds.PatientAge, ds.ReferringPhysicianName = patient.sex, patient.age, ""
    ds.InstitutionName = patient.institution
    if department:
        ds.InstitutionalDepartmentName = department
    if procedure:
        scheme, value = procedure.split(":")
        ds.ProcedureCodeSequence = Sequence([_code(value, scheme, "screening or diagnostic mammography")])
        request = Dataset()
        request.RequestedProcedureID = "RP1"
        request.RequestedProcedureCodeSequence = Sequence([_code(value, scheme, "mammography")])
        ds.RequestAttributesSequence = Sequence([request])
    return ds


def _mammogram(patient, seed, number, laterality, view, **kw) -> Dataset:
    ds = _instance(patient, seed, _MAMMOGRAPHY, "MG", 1, number, **kw)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType, ds.BodyPartExamined, ds.BurnedInAnnotation = "FOR PRESENTATION", "BREAST", "NO"
    ds.ImageLaterality, ds.ViewPosition = laterality, view
    ds.ViewCodeSequence = Sequence([_code(*_VIEW_CODES[view][:1], "SCT", _VIEW_CODES[view][1])])
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 16, 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [0.1, 0.1]
    ds.PixelData = bytes(16 * 16 * 2)
    return ds


def _report(patient, seed, item, **kw) -> Dataset:
    """A comprehensive SR whose root container holds one coded assessment, as TID 4200's Overall Assessment does."""
    ds = _instance(patient, seed, _COMPREHENSIVE_SR, "SR", 9, 1, **kw)
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.ConceptNameCodeSequence = Sequence([_code("111036", "DCM", "Mammography CAD Report")])
    (concept, value) = item
    assessment = Dataset()
    assessment.RelationshipType, assessment.ValueType = "CONTAINS", "CODE"
    assessment.ConceptNameCodeSequence = Sequence([_code(*concept)])
    assessment.ConceptCodeSequence = Sequence([_code(*value)])
    overall = Dataset()
    overall.RelationshipType, overall.ValueType, overall.ContinuityOfContent = "CONTAINS", "CONTAINER", "SEPARATE"
    overall.ConceptNameCodeSequence = Sequence([_code("111413", "DCM", "Overall Assessment")])
    overall.ContentSequence = Sequence([assessment])
    ds.ContentSequence = Sequence([overall])
    return ds


def _write(datasets: list[Dataset], dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for n, ds in enumerate(datasets):
        ds.save_as(dest / f"{n}.dcm", enforce_file_format=True)
    return dest


def cond(key: str, ctype: str, value: Any) -> dict[str, Any]:
    return search.cond(key, ctype, value, system=search.SNOMED)


def explorer(*conditions: dict[str, Any]) -> dict[str, Any]:
    return search.explorer(*conditions, query_id="s__search__s")


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


@pytest.fixture(scope="module")
async def corpus(stack, observer, kafka, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("screening")
    example = yaml.safe_load(bundled_config_path("collections.example.yaml").read_text())
    collections_file = tmp / "collections.yaml"
    collections_file.write_text(SCREENING_COLLECTIONS + yaml.safe_dump({"screening": example["screening"]}))
    env = {"EUCAIM_COLLECTIONS_FILE": str(collections_file), "EUCAIM_SEARCH_PROTECTION": "suppress",
           "EUCAIM_SEARCH_MIN_COUNT": "1", "EUCAIM_CATALOGUE_COUNT_GRANULARITY": "1"}
    await kafka.wait_until_idle()
    with services_restarted_with(stack, env, "metadata", "catalogue_sync"):
        seed = f"scr-{os.urandom(3).hex()}"
        study_keys = {}
        for n, (label, (sex, age, modality, body_part, description)) in enumerate(CORPUS.items()):
            patient = SamplePatient(name=f"SCREENPATIENT{n}{seed[-4:].upper()}^ANA", patient_id=f"SCR-{seed}-{n}",
                                    birth_date="19600101", sex=sex, age=age, accession_number=f"ACCSCR-{seed}-{n}")
            sample = push_sample(stack, tmp / label, patient=patient, seed=f"{seed}-{label}", series=1,
                                 instances_per_series=1, modality=modality, body_part=body_part,
                                 study_description=description)
            study_keys[label] = observer.study_key(sample.study_instance_uid)
        host, port, aet = stack.orthanc_dicom("clinical")
        for n, (label, (sex, age, description, sides, procedure, department, item)) in enumerate(MAMMOGRAMS.items()):
            patient = SamplePatient(name=f"MAMMOPATIENT{n}{seed[-4:].upper()}^EVA", patient_id=f"MG-{seed}-{n}",
                                    birth_date="19650101", sex=sex, age=age, accession_number=f"ACCMG-{seed}-{n}")
            kw = {"description": description, "procedure": procedure, "department": department}
            images = [_mammogram(patient, f"{seed}-{label}", i + 1, side, view, **kw)
                      for i, (side, view) in enumerate((s, v) for s in sides for v in ("CC", "MLO"))]
            reports = [_report(patient, f"{seed}-{label}", item, **kw)] if item else []
            storescu(_write(images + reports, tmp / label), host, port, aet, calling_aet=stack.local_modality_aet())
            study_keys[label] = observer.study_key(images[0].StudyInstanceUID)
        for n, (label, (sex, age, modality, body_part, description, item)) in enumerate(REPORTED.items()):
            patient = SamplePatient(name=f"REPORTPATIENT{n}{seed[-4:].upper()}^IDA", patient_id=f"RP-{seed}-{n}",
                                    birth_date="19600101", sex=sex, age=age, accession_number=f"ACCRP-{seed}-{n}")
            sample = push_sample(stack, tmp / label, patient=patient, seed=f"{seed}-{label}", series=1,
                                 instances_per_series=1, modality=modality, body_part=body_part,
                                 study_description=description)
            if item:
                report = _report(patient, f"{seed}-{label}", item, description=description, procedure=None, department=None)
                report.StudyInstanceUID = sample.study_instance_uid
                storescu(_write([report], tmp / f"{label}-sr"), host, port, aet, calling_aet=stack.local_modality_aet())
            study_keys[label] = observer.study_key(sample.study_instance_uid)
        keys = sorted(study_keys.values())
        reported = [study_keys["birads-sr"], study_keys["pirads-sr"]]
        wait_for(lambda: observer.db[collections.CATALOGUE_STUDIES].count_documents({"_id": {"$in": keys}}) == len(keys)
                 and observer.db[collections.CATALOGUE_STUDIES].count_documents(
                     {"_id": {"$in": reported}, "modalities": "SR"}) == 2,
                 240, "the screening corpus (and its reports) to be catalogued")
        await kafka.wait_until_idle()
        yield Corpus(stack, observer, kafka, study_keys)


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



# -- 2. screening context: catalogue, search, publication ------------------------------------------------------------

async def test_every_study_carries_its_programme_and_cancer_type_with_their_source(corpus):
    docs = {d["_id"]: d for d in corpus.observer.db[collections.CATALOGUE_STUDIES].find(
        {"_id": {"$in": sorted(corpus.study_keys.values())}})}
    context = {label: (docs[key]["programme"], docs[key]["programme_source"], docs[key]["cancer_type"],
                       docs[key]["cancer_type_source"]) for label, key in corpus.study_keys.items()}
    assert context["mg-prog"] == ("organised-screening", "rule 1", "breast", "rule 1")  # department, read clinically
    assert context["mg-4views"] == ("opportunistic-screening", "mammography views", "breast", "collection")
    assert context["mg-diag"] == ("diagnostic", "procedure code", "breast", "collection")
    assert context["ldct-prog"] == ("organised-screening", "rule 3", "lung", "rule 3")
    assert context["breast-mr"] == ("unknown", "default", "breast", "body region")
    assert context["pirads-sr"] == ("unknown", "default", "prostate", "assessment")
    assert context["knee-mr"] == ("unknown", "default", "other", "default")
    assert {label for label, c in context.items() if c[0] == "unknown"} == set(corpus.study_keys) - {
        s for labels in EXPECTED_BY_PROGRAMME.values() for s in labels}
    # The department never reaches the research side: de-identification removed it from the images.
    research = corpus.observer.research_study_id(corpus.study_keys["mg-prog"])
    instance = corpus.observer.orthanc("research", f"studies/{research}/instances")[0]["ID"]
    assert "InstitutionalDepartmentName" not in corpus.observer.orthanc("research", f"instances/{instance}/simplified-tags")


@pytest.mark.parametrize("programme", sorted(EXPECTED_BY_PROGRAMME))
async def test_programme_filters_the_search(corpus, programme):
    assert corpus.found(explorer(cond(PROGRAMME, "EQUALS", programme))) == EXPECTED_BY_PROGRAMME[programme]


@pytest.mark.parametrize("diagnosis", sorted(EXPECTED_BY_DIAGNOSIS))
async def test_diagnosis_is_answered_per_study_where_the_collection_does_not_fix_it(corpus, diagnosis):
    assert corpus.found(explorer(cond(DIAGNOSIS, "EQUALS", diagnosis))) == EXPECTED_BY_DIAGNOSIS[diagnosis]


async def test_programme_and_diagnosis_over_http_count_the_same_studies(corpus):
    body = explorer(cond(DIAGNOSIS, "EQUALS", "SNOMEDCT399068003"), cond(PROGRAMME, "EQUALS", "unknown"))
    answer = corpus.post(body)
    assert answer.status_code == 200, answer.text
    counts = {c["id"]: c["studies_count"] for c in answer.json()["collections"]}
    assert counts.get("scr-other") == 1 and counts.get("scr-prostate") == 2  # pirads-sr; prostate-mr, prostate-pelvis


async def test_the_publication_carries_collection_methods_and_conditions_with_zero_violations(corpus):
    base = corpus.base

    def published(collection_id: str) -> Graph | None:
        response = httpx.get(f"{base}/catalogue/datasets/{collection_id}", headers={"accept": "text/turtle"}, timeout=30)
        if response.status_code != 200:
            return None
        graph = Graph().parse(data=response.text, format="turtle")
        methods = set(graph.objects(None, URIRef("https://cancerimage.eu/ontology/EUCAIM#collectionMethod")))
        return graph if len(methods) == 3 else None

    graph = wait_for(lambda: published("scr-breast"), 90, "scr-breast to be published with its three programmes")
    eucaim = "https://cancerimage.eu/ontology/EUCAIM#"
    methods = {str(graph.value(m, SKOS.notation)) for m in graph.objects(None, URIRef(eucaim + "collectionMethod"))}
    assert methods == {"organised-screening", "opportunistic-screening", "diagnostic"}
    catalogue = Graph().parse(data=httpx.get(f"{base}/catalogue", headers={"accept": "text/turtle"}, timeout=30).text,
                              format="turtle")
    report = validate(catalogue)
    assert report.conforms and report.violations == ()
    # scr-other fixes no condition and holds breast, prostate and other studies: no single condition to publish.
    other = URIRef("https://screening.example.eu/node/catalogue/datasets/scr-other")
    assert catalogue.value(other, URIRef(eucaim + "hasCondition")) is None


# -- BI-RADS / PI-RADS from structured reports ----------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (HYPER + "IMG1005465", {"birads-sr"}),  # BI-RADS 4 (DCM 111174 "Suspicious" in the report)
    (HYPER + "IMG1005469", set()),  # BI-RADS 1: no such report
    (HYPER + "IMG1005477", {"pirads-sr"}),  # PI-RADS 3
])
async def test_a_report_makes_its_study_findable_by_its_assessment(corpus, value, expected):
    assert corpus.found(explorer(cond(ASSESSMENT, "EQUALS", value))) == expected


async def test_the_report_survives_de_identification_and_is_read_on_the_research_side(corpus):
    doc = corpus.observer.db[collections.CATALOGUE_STUDIES].find_one({"_id": corpus.study_keys["birads-sr"]})
    assert "SR" in doc["modalities"] and doc["assessments"] == ["BI-RADS 4"]
    answer = corpus.post(explorer(cond(ASSESSMENT, "EQUALS", HYPER + "IMG1005465")))
    assert answer.status_code == 200
    assert {c["id"]: c["studies_count"] for c in answer.json()["collections"]} == {"scr-breast": 1}
