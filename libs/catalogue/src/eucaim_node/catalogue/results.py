"""Per-collection answers to a federated search, with small-cell protection (pure).

The answer has the shape EUCAIM's explorer reads (``shared/reference/eucaim-search``):
``{"collections": [{id, name, description, studies_count, subjects_count, age_range {min,max},
gender[], modality[], modalities[], body_parts[]}], "total": {studies_count, subjects_count}}``.

Protection, applied to every number and every facet before anything leaves the node:

- a collection whose matching subjects (or studies) are fewer than ``min_count`` is left out
  entirely: to the caller it looks like a collection with no match, and nothing about it is
  recorded but the fact that a cell was suppressed;
- ``round`` reports counts rounded to ``step``; ``perturb`` (the default, as EUCAIM's Focus agent
  does) adds Laplace noise of scale 1/ε, then rounds. Noise is a deterministic function of a
  node secret, the query and the true count, so asking the same question again gives the same
  answer (repetition cannot average the noise away); a reported count is never below ``min_count``;
- a facet value (a sex, a modality, a body part) is listed only if at least ``min_count``
  subjects have it; the age range runs from the ``min_count``-th youngest to the
  ``min_count``-th oldest subject, widened to multiples of 5 years, so no single extreme age shows.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from .documents import STUDY

Mode = Literal["suppress", "round", "perturb"]
SEX_DISPLAY = {"M": "Male", "F": "Female", "O": "Other"}


@dataclass(frozen=True)
class Protection:
    mode: Mode = "perturb"
    min_count: int = 10
    step: int = 10
    epsilon: float = 0.28
    secret: bytes = b""

    def _uniform(self, *parts: object) -> float:
        digest = hmac.new(self.secret, "\x1f".join(map(str, parts)).encode(), hashlib.sha256).digest()
        return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64  # in (0, 1)

    def count(self, true_count: int, *context: object) -> int:
        if self.mode == "suppress":
            return true_count
        value = float(true_count)
        if self.mode == "perturb":
            u = self._uniform(*context, true_count) - 0.5
            value += -(1 / self.epsilon) * math.copysign(1, u) * math.log(1 - 2 * abs(u))
        rounded = int(round(value / self.step) * self.step) if self.step > 1 else int(round(value))
        return max(rounded, self.min_count)


# What one subject shows in a cell, as a list indexed by these (a search folds every matching study into one:
# at 10,000 studies a dict per subject and a field-name lookup per study cost more than the filter).
_SEX, _MODALITY, _BODY_PART, _AGE = range(4)


@dataclass
class _Cell:
    studies: int = 0
    subjects: dict[str, list[Any]] = field(default_factory=dict)  # subject key → [sexes, modalities, body parts, age]


def _facet(cell: _Cell, index: int, min_count: int) -> list[str]:
    holders: dict[str, int] = defaultdict(int)
    for subject in cell.subjects.values():
        for value in subject[index]:
            holders[value] += 1
    return sorted(v for v, n in holders.items() if n >= min_count)


def _age_range(cell: _Cell, min_count: int) -> dict[str, int]:
    ages = sorted(a for s in cell.subjects.values() for a in [s[_AGE]] if a is not None)
    if len(ages) < min_count or not ages:
        return {"min": 0, "max": 0}
    low, high = ages[min_count - 1], ages[-min_count]
    low, high = min(low, high), max(low, high)
    return {"min": int(math.floor(low / 5) * 5), "max": int(math.ceil((high + 1e-9) / 5) * 5)}


@dataclass(frozen=True)
class SearchAnswer:
    body: dict[str, Any]
    reported_collections: int
    suppressed_cells: int


def build_answer(studies: list[dict[str, Any]], collections: dict[str, tuple[str, str]], protection: Protection,
                 query_canonical: str) -> SearchAnswer:
    """``studies``: the matching studies' search rows (stored fields named by ``documents.STUDY``); ``collections``:
    id → (name, description) of the collections the node publishes, in display order."""
    cells: dict[str, _Cell] = defaultdict(_Cell)
    collection_f, subject_f, sex_f = STUDY.collection_id, STUDY.subject_key, STUDY.sex
    modalities_f, body_parts_f, age_f = STUDY.modalities, STUDY.body_parts, STUDY.age_years
    for doc in studies:
        get = doc.get
        cell = cells[get(collection_f)]
        cell.studies += 1
        subject_key = str(get(subject_f))
        subject = cell.subjects.get(subject_key)
        if subject is None:
            subject = cell.subjects[subject_key] = [set(), set(), set(), None]
        subject[_SEX].add(SEX_DISPLAY.get(get(sex_f), "Unknown"))
        subject[_MODALITY].update(get(modalities_f) or ())
        subject[_BODY_PART].update(get(body_parts_f) or ())
        age = get(age_f)
        if age is not None and (subject[_AGE] is None or age < subject[_AGE]):
            subject[_AGE] = age
    answered, suppressed = [], 0
    total_studies = total_subjects = 0
    k = protection.min_count
    for collection_id, (name, description) in collections.items():
        cell = cells.get(collection_id)
        if cell is None:
            continue
        if len(cell.subjects) < k or cell.studies < k:
            suppressed += 1
            continue
        studies_count = protection.count(cell.studies, query_canonical, collection_id, "studies")
        subjects_count = min(protection.count(len(cell.subjects), query_canonical, collection_id, "subjects"), studies_count)
        modalities = _facet(cell, _MODALITY, k)
        answered.append({
            "id": collection_id,
            "name": name,
            "description": description,
            "studies_count": studies_count,
            "subjects_count": subjects_count,
            "age_range": _age_range(cell, k),
            "gender": _facet(cell, _SEX, k),
            "modality": modalities,
            "modalities": modalities,
            "body_parts": _facet(cell, _BODY_PART, k),
        })
        total_studies += studies_count
        total_subjects += subjects_count
    # Studies in collections the node does not publish (not in the collections file) are never answered.
    body = {"collections": answered, "total": {"studies_count": total_studies, "subjects_count": total_subjects}}
    return SearchAnswer(body, len(answered), suppressed)
