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
    """``file:line NAME`` of each reference to a catalogue collection's registry constant."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
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
