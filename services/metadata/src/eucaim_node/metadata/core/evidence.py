"""What a study's de-identified instances say about its screening context (pure: Orthanc's simplified tags in).

- procedure codes: Procedure Code Sequence (0008,1032) and Requested Procedure Code Sequence (0032,1064), at the
  top level or inside Request Attributes Sequence (0040,0275), as ``SCHEME:VALUE``; de-identification keeps them;
- mammography views: (ImageLaterality (0020,0062) or Laterality (0020,0060), ViewPosition (0018,5101) or View Code
  Sequence (0054,0220) with SNOMED 399162004 cranio-caudal / 399368009 medio-lateral oblique);
- BI-RADS / PI-RADS assessments: CODE and NUM content items of a structured report (ContentSequence, any depth),
  read by :func:`eucaim_node.catalogue.screening.assessment_of`. Clean Structured Content keeps coded items.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from eucaim_node.catalogue.screening import assessment_of

#: How deep a report's content tree is walked (TID 4200 nests about five levels).
MAX_DEPTH = 12
_VIEW_CODES = {"399162004": "CC", "399368009": "MLO"}


def _code(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, dict) or not item.get("CodeValue"):
        return None
    return f"{item.get('CodingSchemeDesignator') or ''}:{item['CodeValue']}".strip().upper(), str(item.get("CodeMeaning") or "")


def _first_code(sequence: Any) -> tuple[str, str] | None:
    return _code(sequence[0]) if isinstance(sequence, list) and sequence else None


def procedure_codes(tags: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    holders = [tags, *(i for i in tags.get("RequestAttributesSequence") or () if isinstance(i, dict))]
    for holder in holders:
        for name in ("ProcedureCodeSequence", "RequestedProcedureCodeSequence"):
            for item in holder.get(name) or ():
                if (code := _code(item)) is not None:
                    found.add(code[0])
    return found


def mammography_view(tags: dict[str, Any]) -> tuple[str, str] | None:
    laterality = str(tags.get("ImageLaterality") or tags.get("Laterality") or "").strip().upper()
    view = str(tags.get("ViewPosition") or "").strip().upper()
    if not view and (code := _first_code(tags.get("ViewCodeSequence"))):
        view = _VIEW_CODES.get(code[0].split(":", 1)[-1], "")
    return (laterality, view) if laterality in ("L", "R") and view else None


def assessments(tags: dict[str, Any]) -> set[str]:
    return {a for a in _walk(tags.get("ContentSequence"), 0) if a}


def _walk(items: Any, depth: int) -> Iterator[str | None]:
    if depth > MAX_DEPTH or not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        concept = _first_code(item.get("ConceptNameCodeSequence"))
        if concept is not None and item.get("ValueType") == "CODE":
            yield assessment_of(concept, _first_code(item.get("ConceptCodeSequence")))
        elif concept is not None and item.get("ValueType") == "NUM":
            yield assessment_of(concept, None, _numeric(item.get("MeasuredValueSequence")))
        yield from _walk(item.get("ContentSequence"), depth + 1)


def _numeric(sequence: Any) -> float | None:
    try:
        return float(str(sequence[0]["NumericValue"]).split("\\")[0])
    except (TypeError, ValueError, KeyError, IndexError):
        return None


def study_evidence(instance_tags: Iterable[dict[str, Any]]) -> dict[str, set]:
    """Procedure codes, mammography views and assessments over the instances read."""
    codes: set[str] = set()
    views: set[tuple[str, str]] = set()
    found: set[str] = set()
    for tags in instance_tags:
        codes |= procedure_codes(tags)
        if str(tags.get("Modality") or "").upper() == "MG" and (view := mammography_view(tags)):
            views.add(view)
        found |= assessments(tags)
    return {"procedure_codes": codes, "mg_views": views, "assessments": found}
