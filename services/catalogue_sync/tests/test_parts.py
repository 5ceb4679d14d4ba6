"""Aggregates in parts (decision 0091) equal the aggregates of the whole collection, whatever the split."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from eucaim_node.catalogue.documents import StudyDocument
from eucaim_node.catalogue.quality import FLAGS, MINIMUM_TAGS
from eucaim_node.catalogue_sync.adapters.collection_store import aggregate
from eucaim_node.catalogue_sync.core.parts import PARTS, merge, part_of, part_totals, subject_entry

ROWS = frozenset({"_id", "collection_id", "subject_key", "sex", "modalities"})


def studies(seed: int, count: int) -> list[StudyDocument]:
    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    docs = []
    for n in range(count):
        modalities = rnd.sample(["CT", "MR", "PT", "Philips Medical Systems Nederland B.V."], rnd.randint(0, 2))
        docs.append({
            "_id": f"2.25.{seed}{n}", "collection_id": "c", "subject_key": f"S{rnd.randint(0, count // 3)}",
            "sex_code": rnd.choice([None, "SNOMEDCT248152002", "SNOMEDCT248153007"]), "sex": "F",
            "age_years": rnd.choice([None, 0.0, 0.5, 33.0, 71.25]),
            "modalities": modalities, "modality_codes": [f"RID{len(m)}" for m in modalities],
            "body_parts": rnd.sample(["CHEST", "HEAD"], rnd.randint(0, 2)), "body_part_codes": ["SNOMEDCT1"],
            "manufacturers": ["$WEIRD"], "manufacturer_codes": [],
            "series_count": rnd.randint(1, 4), "instance_count": rnd.randint(1, 400),
            "indexed_at": start + timedelta(minutes=n),
            "programme": rnd.choice([None, "breast-screening", "lung-screening"]),
            "cancer_type": rnd.choice([None, "breast", "lung"]),
            "quality": rnd.choice([None, {"series_checked": rnd.randint(1, 3),
                                          "flagged": {f: rnd.randint(0, 2) for f in FLAGS},
                                          "tag_present": {t: rnd.randint(0, 3) for t in MINIMUM_TAGS}}]),
        })
    return [StudyDocument.from_document(d) for d in docs]


def parted(docs: list[StudyDocument]) -> list[dict]:
    by_subject: dict[str, list[StudyDocument]] = defaultdict(list)
    for doc in docs:
        by_subject[doc.subject_key].append(doc)
    parts: dict[int, list[dict]] = defaultdict(list)
    for subject, own in by_subject.items():
        parts[part_of(subject)].append(subject_entry(subject, own, ROWS))
    return [part_totals(entries) for entries in parts.values()]


def test_merged_parts_equal_the_whole_collections_aggregates():
    for seed in range(30):
        docs = studies(seed, random.Random(seed).randint(1, 300))
        assert merge(parted(docs)) == aggregate(docs), seed


def test_an_empty_collection_merges_to_the_empty_aggregates():
    assert merge([]) == aggregate([])


def test_a_subject_lives_in_one_part_and_its_entry_is_recomputed_not_incremented():
    docs = studies(7, 40)
    subject = docs[0].subject_key
    own = [d for d in docs if d.subject_key == subject]
    assert 0 <= part_of(subject) < PARTS and part_of(subject) == part_of(subject)
    # the same studies, in any order and seen twice (a redelivery), make the same entry
    assert subject_entry(subject, own, ROWS) == subject_entry(subject, list(reversed(own)), ROWS)
    assert subject_entry(subject, [], ROWS) is None
    rows = subject_entry(subject, own, ROWS)["rows"]
    assert {tuple(sorted(r)) for r in rows} == {tuple(sorted(ROWS))}


def test_a_search_row_holds_only_the_fields_the_stored_study_has():
    """A study stored before `programme` existed has no such field in its row (the in-memory search must match
    what a query on the store matches), while one stored with it keeps it, None included."""
    from eucaim_node.catalogue_sync.core.parts import search_row

    fields = ROWS | {"programme"}
    (study,) = studies(7, 1)
    stored = study.to_document()
    old = {k: v for k, v in stored.items() if k != "programme"}
    assert "programme" not in search_row(StudyDocument.from_document(old), fields)
    assert search_row(StudyDocument.from_document({**old, "programme": None}), fields)["programme"] is None
    assert search_row(study, fields) == {k: v for k, v in stored.items() if k in fields}
