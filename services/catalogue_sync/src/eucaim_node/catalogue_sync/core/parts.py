"""Collection aggregates kept in parts, so that one change costs O(changed subject), not O(collection) (pure).

Decision 0091. A collection's subjects are spread over :data:`PARTS` parts by a hash of the subject key.
A part holds one *entry* per subject (what that subject contributes: its study, series and instance
counts, its coded and raw facet values, its youngest age, and the search rows of its studies) and the
part's *totals* (the sum of its entries). The collection's aggregates are the merge of its parts'
totals; facet counts are numbers of subjects, and a subject lives in exactly one part, so the sums are
exact. An entry is always recomputed from the catalogue (the subject's study documents), never
incremented: a redelivered event recomputes the same entry, and no sequence of crashes can make it
drift. :func:`merge` of the parts equals ``aggregate`` of all the collection's studies (tested).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime
from typing import Any

from eucaim_node.catalogue.documents import StudyDocument
from eucaim_node.catalogue.quality import collection_summary
from eucaim_node.events import CollectionAggregates

#: Parts per collection: a change rewrites one part (about 1/PARTS of the collection's subjects) and
#: reads PARTS small totals documents.
PARTS = 64

#: Facets counted per subject: (name in the aggregates, coded values of a study, raw values of a study).
FACETS = (("modality", lambda s: s.modality_codes, lambda s: s.modalities),
          ("body_part", lambda s: s.body_part_codes, lambda s: s.body_parts),
          ("manufacturer", lambda s: s.manufacturer_codes, lambda s: s.manufacturers))


def part_of(subject_key: str) -> int:
    return int.from_bytes(hashlib.sha256(subject_key.encode()).digest()[:4], "big") % PARTS


def search_row(study: StudyDocument, row_fields: frozenset[str]) -> dict[str, Any]:
    """The study's stored fields the search reads (``row_fields``: stored names, checked against the model).

    Only the fields the stored document has: a field it lacks (a study indexed before the field existed) must stay
    absent, not take the model's default, or the in-memory search would match what a query on the store does not.
    """
    return {k: v for k, v in study.model_dump(by_alias=True, exclude_unset=True).items() if k in row_fields}


def subject_entry(subject_key: str, studies: list[StudyDocument], row_fields: frozenset[str]) -> dict[str, Any] | None:
    """What one subject contributes to one collection, from its study documents in it (None: nothing)."""
    if not studies:
        return None
    ages = [s.age_years for s in studies if s.age_years is not None]
    entry: dict[str, Any] = {
        "subject": subject_key,
        "studies": len(studies),
        "series": sum(s.series_count for s in studies),
        "instances": sum(s.instance_count for s in studies),
        "sex": sorted({s.sex_code for s in studies if s.sex_code is not None}),
        # Screening context (decisions 0096/0097): a study without one counts as "unknown" / "other".
        "programme": sorted({s.programme or "unknown" for s in studies}),
        "cancer_type": sorted({s.cancer_type or "other" for s in studies}),
        "age": min(ages) if ages else None,
        "changed_at": max((s.indexed_at for s in studies if s.indexed_at is not None), default=None),
        "quality": collection_summary(s.quality for s in studies),
        "rows": [search_row(s, row_fields) for s in sorted(studies, key=lambda s: s.key)],
    }
    for name, coded, raw in FACETS:
        entry[name] = sorted({v for s in studies for v in coded(s)})
        entry[name + "_raw"] = sorted({v for s in studies for v in raw(s)})
    return entry


def _pairs(counter: dict[str, int]) -> list[dict[str, Any]]:
    # Values in objects, not as keys (raw values may hold "." or start with "$") nor as [value, count] pairs
    # (FerretDB 1.24 stores no nested arrays).
    return [{"value": value, "subjects": count} for value, count in sorted(counter.items())]


def add_quality(total: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """Two ``collection_summary`` results summed (the summary is a sum over studies)."""
    result = {**total, "series_checked": total["series_checked"] + summary["series_checked"],
              "studies_checked": total["studies_checked"] + summary["studies_checked"]}
    for key in ("flagged", "tag_present"):
        result[key] = {name: n + summary[key].get(name, 0) for name, n in total[key].items()}
    return result


def part_totals(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The sum of a part's entries."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    totals: dict[str, Any] = {"subjects": len(entries), "studies": 0, "series": 0, "instances": 0, "ages": [],
                              "quality": collection_summary(())}
    for entry in entries:
        totals["quality"] = add_quality(totals["quality"], entry["quality"])
        for field in ("studies", "series", "instances"):
            totals[field] += entry[field]
        for name in ("sex", "programme", "cancer_type"):
            for value in entry[name]:
                counts[name][value] += 1
        for name, _, _ in FACETS:
            for value in entry[name]:
                counts[name][value] += 1
            for value in entry[name + "_raw"]:
                counts[name + "_raw"][value] += 1
        if entry["age"] is not None:
            totals["ages"].append(entry["age"])
    totals["ages"].sort()
    totals["counts"] = {name: _pairs(counter) for name, counter in counts.items()}
    return totals


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """A collection's aggregates (the shape ``CollectionAggregates`` publishes) from its parts' totals."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    result = {"subjects": 0, "studies": 0, "series": 0, "instances": 0}
    ages: list[float] = []
    quality = collection_summary(())
    for totals in parts:
        quality = add_quality(quality, totals["quality"])
        for field in result:
            result[field] += totals[field]
        ages.extend(totals["ages"])
        for name, pairs in totals["counts"].items():
            for pair in pairs:
                counts[name][pair["value"]] += pair["subjects"]
    ages.sort()

    def named(name: str) -> dict[str, int]:
        return dict(sorted(counts[name].items()))

    return {
        **result,
        "modalities": sorted(counts["modality_raw"]), "body_parts": sorted(counts["body_part_raw"]),
        "manufacturers": sorted(counts["manufacturer_raw"]),
        "age_range": [ages[0], ages[-1]] if ages else None,
        "sex_counts": named("sex"), "modality_counts": named("modality"), "body_part_counts": named("body_part"),
        "manufacturer_counts": named("manufacturer"), "subject_ages": ages, "quality": quality,
        "programme_counts": named("programme"), "cancer_type_counts": named("cancer_type"),
    }


def newest(stamps: list[datetime | None]) -> datetime | None:
    present = [s for s in stamps if s is not None]
    return max(present) if present else None


def summary(aggregates: dict[str, Any]) -> CollectionAggregates:
    """The part of a collection's aggregates that CollectionUpdated carries (the event's model, lists as tuples)."""
    return CollectionAggregates(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in aggregates.items()
                                   if k in CollectionAggregates.model_fields})
