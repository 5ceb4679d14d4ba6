"""The catalogue contract of docs/architecture.md, checked on every `make test-unit`.

metadata writes the catalogue and every other component reads it through the typed model of
``eucaim_node.catalogue.documents`` (its reader port, or its field names for a query or a projection). A field
named by a string literal of its own would keep "working" after the model renamed it: it would silently match
nothing. So the sources may not name a catalogue field by a literal: not as a subscript (``doc["sex_code"]``),
not through ``.get("sex_code")``, not as a key of a query or a projection (``{"subject_key": ...}``). The hostile
half plants each form in a copy of a real module and checks that the rule then names it.
"""

from __future__ import annotations

import ast
import dataclasses
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from eucaim_node.catalogue.documents import REMOVED, SERIES, STUDY, SUBJECT
from eucaim_node.catalogue.search import QueryCompiler
from eucaim_node.catalogue.store import search_fields
from eucaim_node.store import collections as names

ROOT = Path(__file__).resolve().parents[1]
#: The code that reads or writes the catalogue (and everything else of the node's sources but the model itself).
SOURCES = (*sorted(ROOT.glob("services/*/src")), *sorted(ROOT.glob("libs/*/src")))
MODEL = ROOT / "libs/catalogue/src/eucaim_node/catalogue/documents.py"
#: Catalogue field names that are also the names of other things, so a literal of them is no sign of a catalogue
#: read: event and aggregate fields (collection_id, study_key, modalities, body_parts, programme, cancer_type,
#: quality, assessments), DICOM attribute keywords and search keys (modality, body_part, manufacturer, sex,
#: model), MongoDB's own key (_id), flags of other documents (contrast).
SHARED = frozenset({"_id", "collection_id", "study_key", "modality", "modalities", "body_part", "body_parts",
                    "manufacturer", "manufacturers", "sex", "programme", "cancer_type", "quality", "assessments",
                    "contrast", "model"})
#: The names only the catalogue uses: none may appear as a literal outside the model.
CATALOGUE_ONLY = frozenset(set(STUDY) | set(SERIES) | set(SUBJECT) | set(REMOVED)) - SHARED


def literal_fields(path: Path) -> list[str]:
    """``file:line name`` of each catalogue-only field named by a literal: subscript, ``.get``/``.pop``/
    ``.setdefault`` argument, or dictionary key."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Subscript):
            keys = [node.slice]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "get", "pop", "setdefault") and node.args:
            keys = [node.args[0]]
        elif isinstance(node, ast.Dict):
            keys = [k for k in node.keys if k is not None]
        else:
            continue
        found += [f"{path}:{node.lineno} {k.value}" for k in keys
                  if isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value.split(".", 1)[0] in CATALOGUE_ONLY]
    return found


def test_the_rule_covers_the_catalogues_own_fields():
    # Not an empty rule: the fields readers use most are covered.
    assert {"subject_key", "sex_code", "age_years", "instance_count", "series_count", "modality_codes", "study_keys",
            "indexed_at", "removed_at", "condition_code", "age_at_first_study_years"} <= CATALOGUE_ONLY


def test_no_source_names_a_catalogue_field_by_a_literal():
    files = [p for src in SOURCES for p in src.rglob("*.py") if p != MODEL]
    assert len(files) > 100, "the scan found too few sources: it is broken"
    assert [hit for p in files for hit in literal_fields(p)] == []


@pytest.mark.parametrize("planted", [
    'doc["sex_code"]', 'doc.get("age_years")', '{"subject_key": key}', 'row["study_keys"]',
    'find({"collection_id": c}, {"instance_count": 1})', 'doc["indexed_at.year"]',
])
def test_a_planted_literal_field_breaks_the_rule(tmp_path: Path, planted: str) -> None:
    real = ROOT / "services/catalogue_sync/src/eucaim_node/catalogue_sync/adapters/collection_store.py"
    copy = tmp_path / real.name
    shutil.copy(real, copy)
    assert literal_fields(copy) == []
    copy.write_text(copy.read_text("utf-8") + f"\n\ndef planted(doc, row, key, c, find):\n    return {planted}\n", "utf-8")
    assert len(literal_fields(copy)) == 1, planted


def test_the_search_keys_name_study_fields():
    # Each search key's paths are stored names of the study: the search cannot query a field that is not there.
    fields = search_fields(QueryCompiler())
    assert {STUDY.modality_codes, STUDY.body_region_codes, STUDY.age_years} <= fields
    assert {f.split(".", 1)[0] for f in fields} <= set(STUDY)


def test_a_search_key_naming_a_missing_field_is_refused():
    keys = dict(QueryCompiler().keys)
    name, spec = next((n, s) for n, s in keys.items() if s.code_path == STUDY.modality_codes)
    keys[name] = dataclasses.replace(spec, code_path="modality_code_list")  # as if the model had renamed it
    with pytest.raises(KeyError, match="modality_code_list"):
        search_fields(SimpleNamespace(keys=keys))


#: What StudyIndexed carries for the audit's record (decision 0111), never for catalogue-sync's aggregates.
EVENT_SUMMARY = frozenset({"series_count", "instance_count", "modalities", "body_parts"})


def event_summary_reads(path: Path) -> list[str]:
    """``file:line field`` of each read of an event's summary fields (``event.series_count`` and the like)."""
    return [f"{path}:{node.lineno} {node.attr}" for node in ast.walk(ast.parse(path.read_text("utf-8")))
            if isinstance(node, ast.Attribute) and node.attr in EVENT_SUMMARY
            and isinstance(node.value, ast.Name) and "event" in node.value.id.lower()]


def test_catalogue_sync_never_takes_counts_from_an_event():
    files = list((ROOT / "services/catalogue_sync/src").rglob("*.py"))
    assert files and [hit for p in files for hit in event_summary_reads(p)] == []


def test_a_planted_count_from_an_event_is_found(tmp_path: Path) -> None:
    real = ROOT / "services/catalogue_sync/src/eucaim_node/catalogue_sync/core/aggregates.py"
    copy = tmp_path / real.name
    copy.write_text(real.read_text("utf-8") + "\n\ndef planted(event):\n    return event.instance_count\n", "utf-8")
    assert [h.rsplit(" ", 1)[1] for h in event_summary_reads(copy)] == ["instance_count"]


def test_the_audit_record_of_study_indexed_keeps_its_counts_and_codes():
    from datetime import UTC, datetime

    from eucaim_node.audit.core.records import KafkaPosition, audit_record
    from eucaim_node.events import StudyIndexed

    event = StudyIndexed.create(cause="test:0111", producer="metadata", study_key="2.25.5", collection_id="lung",
                                subject_key="EUCAIM-LOCAL-x", series_count=2, instance_count=20, modalities=("CT",),
                                body_parts=("CHEST",))
    record = audit_record(event.model_dump_json().encode(), {}, KafkaPosition(StudyIndexed.TOPIC, 0, 1),
                          datetime(2026, 1, 1, tzinfo=UTC))
    assert record["detail"] == {"series_count": 2, "instance_count": 20, "modalities": ["CT"], "body_parts": ["CHEST"]}


#: The catalogue's own collections (metadata writes them; decision 0110).
CATALOGUE_COLLECTIONS = frozenset({"CATALOGUE_STUDIES", "CATALOGUE_SERIES", "CATALOGUE_SUBJECTS",
                                   "CATALOGUE_REMOVED_STUDIES"})
#: The only modules that may name them: the registry and the grants, the writer's adapter, the reader's adapter,
#: and the CLI's synchronous walkthrough (it parses with the model; the reader port is asynchronous).
MAY_NAME_CATALOGUE = frozenset(ROOT / p for p in (
    "libs/store/src/eucaim_node/store/collections.py", "libs/store/src/eucaim_node/store/access.py",
    "services/metadata/src/eucaim_node/metadata/adapters/catalogue.py",
    "libs/catalogue/src/eucaim_node/catalogue/reader.py", "libs/cli/src/eucaim_node/cli/walkthrough.py"))


def catalogue_collection_names(path: Path) -> list[str]:
    """``file:line NAME`` of each reference to a catalogue collection: its registry constant, or its name written
    as a string (``db["catalogue_series"]`` bypasses the constant)."""
    values = {getattr(names, constant): constant for constant in CATALOGUE_COLLECTIONS}
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if isinstance(node, ast.Constant) and node.value in values:
            name = values[node.value]
        if name in CATALOGUE_COLLECTIONS:
            found.append(f"{path}:{node.lineno} {name}")
        elif isinstance(node, ast.alias) and node.name in CATALOGUE_COLLECTIONS:
            found.append(f"{path} imports {node.name}")
    return found


def test_only_the_ports_adapters_touch_the_catalogues_collections():
    files = [p for src in SOURCES for p in src.rglob("*.py") if p not in MAY_NAME_CATALOGUE]
    assert [hit for p in files for hit in catalogue_collection_names(p)] == []
    assert all(catalogue_collection_names(p) for p in MAY_NAME_CATALOGUE), "an allowed module no longer needs it"


def test_a_planted_direct_catalogue_read_is_found(tmp_path: Path) -> None:
    real = ROOT / "services/materialiser/src/eucaim_node/materialiser/adapters/mongo.py"
    copy = tmp_path / real.name
    copy.write_text(real.read_text("utf-8") + "\n\ndef planted(db):\n    return db[names.CATALOGUE_SERIES]\n", "utf-8")
    assert [h.rsplit(" ", 1)[1] for h in catalogue_collection_names(copy)] == ["CATALOGUE_SERIES"]
    copy.write_text(real.read_text("utf-8") + f"\n\ndef planted(db):\n    return db[{names.CATALOGUE_STUDIES!r}]\n",
                    "utf-8")
    assert [h.rsplit(" ", 1)[1] for h in catalogue_collection_names(copy)] == ["CATALOGUE_STUDIES"]


class _Cursor:
    def __init__(self, docs: list[dict]) -> None:
        self._docs = docs

    async def to_list(self, _length: int | None) -> list[dict]:
        return self._docs

    def __aiter__(self):
        async def generate():
            for doc in self._docs:
                yield doc
        return generate()


class _Collection:
    """Just enough of an AsyncCollection for the two adapters: equality, ``$in`` and ``$nin`` filters."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.docs: dict[str, dict] = {}

    @staticmethod
    def _matches(doc: dict, query: dict) -> bool:
        def one(value, condition) -> bool:
            if isinstance(condition, dict) and "$in" in condition:
                return value in condition["$in"]
            if isinstance(condition, dict) and "$nin" in condition:
                return value not in condition["$nin"]
            return value == condition
        return all(one(doc.get(k), c) for k, c in query.items())

    def _found(self, query: dict, projection: dict | None) -> list[dict]:
        found = [dict(d) for d in self.docs.values() if self._matches(d, query)]
        if projection:
            found = [{k: v for k, v in d.items() if k == "_id" or k in projection} for d in found]
        return found

    async def create_index(self, *_args, **_kwargs) -> None:
        return None

    async def find_one(self, query: dict, projection: dict | None = None) -> dict | None:
        return next(iter(self._found(query, projection)), None)

    def find(self, query: dict, projection: dict | None = None) -> _Cursor:
        return _Cursor(self._found(query, projection))

    async def insert_one(self, doc: dict) -> None:
        from pymongo.errors import DuplicateKeyError
        if doc["_id"] in self.docs:
            raise DuplicateKeyError("duplicate _id")
        self.docs[doc["_id"]] = dict(doc)

    async def replace_one(self, query: dict, doc: dict, upsert: bool = False) -> SimpleNamespace:
        matched = [d for d in self.docs.values() if self._matches(d, query)]
        if matched or upsert:
            self.docs[matched[0]["_id"] if matched else query["_id"]] = {"_id": query["_id"], **doc}
        return SimpleNamespace(matched_count=len(matched[:1]))

    async def delete_one(self, query: dict) -> None:
        for d in [d for d in self.docs.values() if self._matches(d, query)][:1]:
            del self.docs[d["_id"]]

    async def delete_many(self, query: dict) -> None:
        for d in [d for d in self.docs.values() if self._matches(d, query)]:
            del self.docs[d["_id"]]


class _Database(dict):
    def __missing__(self, name: str) -> _Collection:
        self[name] = _Collection(name)
        return self[name]


def _every_field_set(model_class, /, **values):
    """A document whose every field differs from its default, so a field lost on the way shows."""
    document = model_class(**values)
    unset = [n for n, f in model_class.model_fields.items() if getattr(document, n) == f.default]
    assert unset == [], f"{model_class.__name__}: set these too: {unset}"
    return document


async def test_what_the_writer_stores_the_reader_reads_back_field_for_field():
    from datetime import UTC, datetime

    from eucaim_node.catalogue.documents import RemovedStudy, SeriesDocument, StudyDocument
    from eucaim_node.catalogue.reader import MongoCatalogueReader
    from eucaim_node.metadata.adapters.catalogue import MongoCatalogue

    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    series = _every_field_set(
        SeriesDocument, key="2.25.7", study_key="2.25.1", subject_key="EUCAIM-LOCAL-x", modality="CT",
        modality_code="RID10321", body_part="CHEST", body_part_code="SNOMEDCT43799004",
        body_region_codes=["SNOMEDCT39607008"], manufacturer="SIEMENS", manufacturer_code="birnlex_3066",
        model="SOMATOM", series_date="20200101", slice_thickness_mm=1.25, pixel_spacing_mm=[0.7, 0.7], contrast=True,
        instance_count=3, quality={"applicable": True, "flags": []})
    study = _every_field_set(
        StudyDocument, key="2.25.1", cdm="eucaim-cdm-imaging/1", subject_key="EUCAIM-LOCAL-x", collection_id="lung",
        condition_code="SNOMEDCT363358000", condition_label="Lung cancer", study_date="20240101", sex="F",
        sex_code="SNOMEDCT248152002", age_years=61.0, modalities=["CT"], modality_codes=["RID10321"],
        body_parts=["CHEST"], body_part_codes=["SNOMEDCT43799004"], body_region_codes=["SNOMEDCT39607008"],
        manufacturers=["SIEMENS"], manufacturer_codes=["birnlex_3066"], contrast=True, programme="diagnostic",
        programme_source="rule", cancer_type="lung", cancer_type_source="collection", assessments=["PI-RADS 3"],
        assessment_codes=["RID50283"], series_count=1, instance_count=3, indexed_at=at, source_event_id="e-1",
        quality={"series_checked": 1, "flags": []})
    db = _Database()
    writer, reader = MongoCatalogue(db), MongoCatalogueReader(db)
    await writer.ensure_indexes()
    await writer.replace_study(study, [series])
    await writer.refresh_subject("EUCAIM-LOCAL-x", study.key)

    assert await reader.study(study.key) == study
    assert await reader.series_of(study.key) == [series]
    assert await reader.subject_studies("EUCAIM-LOCAL-x") == [study]
    assert await reader.subject_studies("EUCAIM-LOCAL-x", "other") == []
    subject = await reader.subject("EUCAIM-LOCAL-x")
    assert (subject.study_keys, subject.collection_ids, subject.sex_codes, subject.study_count,
            subject.age_at_first_study_years) == (["2.25.1"], ["lung"], ["SNOMEDCT248152002"], 1, 61.0)
    assert await reader.study_rows({STUDY.collection_id: "lung"}, (STUDY.age_years,)) == [
        {STUDY.key: "2.25.1", STUDY.age_years: 61.0}]
    assert await reader.series_keys_of([study.key]) == {study.key: [series.key]}
    assert [s async for s in reader.all_studies()] == [study]

    await writer.remove_study(study, at)
    assert await reader.study(study.key) is None and await reader.series_of(study.key) == []
    assert await writer.removed_studies_of("EUCAIM-LOCAL-x") == [
        RemovedStudy(key="2.25.1", collection_id="lung", subject_key="EUCAIM-LOCAL-x", removed_at=at)]
