"""A study's screening context: programme and cancer type, from the collections file's rules and the images (pure).

Precedence, per field (each field is decided on its own; docs/federation.md, decision 0096):

programme (organised-screening, opportunistic-screening, diagnostic, unknown)
  1. the first ``screening.rules`` entry of the collections file that matches and sets a programme;
  2. a procedure code whose meaning the node knows (:data:`PROCEDURE_EVIDENCE`, e.g. LOINC 24606-6 "MG Breast
     Screening"): screening → ``screening.image_screening_programme``; diagnostic → diagnostic;
  3. the four standard mammography views (R CC, L CC, R MLO, L MLO; PS3.16 CID 4014) in one MG study, the
     screening examination → ``image_screening_programme``;
  4. unknown.
cancer type (breast, lung, prostate, other)
  1. the first matching rule that sets a cancer type;
  2. the collection's condition (a collection of lung screening is about lung cancer);
  3. the images: a known procedure code; a BI-RADS assessment (breast) or PI-RADS assessment (prostate); a series
     imaging the breast or the prostate (the explorer regions); the lung only for a CT of a screening programme
     (a chest CT is not by itself about lung cancer);
  4. other.

Rules see the calling AE title, InstitutionalDepartmentName (read on the clinical side: de-identification removes
it), procedure codes, StudyDescription after de-identification and the modalities. Text compares normalised
(``normalise_text``), descriptions by whole words, as the collection rules do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .config import CancerType, Condition, Programme, ScreeningConfig, ScreeningRule, normalise_text

PROGRAMMES: tuple[Programme, ...] = ("organised-screening", "opportunistic-screening", "diagnostic", "unknown")
CANCER_TYPES: tuple[CancerType, ...] = ("breast", "lung", "prostate", "other")
PROGRAMME_LABELS = {"organised-screening": "Organised screening programme", "opportunistic-screening": "Opportunistic screening",
                    "diagnostic": "Diagnostic or follow-up imaging", "unknown": "Unknown"}
#: The explorer's diagnosis values (search-keys.json) for each cancer type.
CANCER_CONDITIONS: dict[str, Condition] = {
    "breast": Condition(code="SNOMEDCT254837009", label="Breast cancer"),
    "lung": Condition(code="SNOMEDCT363358000", label="Lung cancer"),
    "prostate": Condition(code="SNOMEDCT399068003", label="Prostate cancer"),
}
_CONDITION_CANCER = {c.code: t for t, c in CANCER_CONDITIONS.items()}
#: Procedure codes (``SCHEME:VALUE``) whose meaning needs no rule: LOINC/RSNA Radiology Playbook mammography.
PROCEDURE_EVIDENCE: dict[str, tuple[str, CancerType]] = {
    "LN:24606-6": ("screening", "breast"),  # MG Breast Screening
    "LN:24605-8": ("diagnostic", "breast"),  # MG Breast Diagnostic
}
#: The screening examination's four views: (laterality, view) with ViewPosition CC and MLO (PS3.3 C.8.11.7).
STANDARD_MG_VIEWS = frozenset({("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")})
BREAST, LUNG, PROSTATE = "SNOMEDCT76752008", "SNOMEDCT39607008", "SNOMEDCT41216001"


@dataclass(frozen=True)
class ScreeningFacts:
    """What the rules and the image evidence look at (text normalised)."""

    calling_aet: str | None = None
    department: str | None = None
    procedure_codes: frozenset[str] = frozenset()  # "SCHEME:VALUE", upper case
    description: str = ""
    modalities: frozenset[str] = frozenset()
    mg_views: frozenset[tuple[str, str]] = frozenset()
    regions: frozenset[str] = frozenset()  # body_region_codes of the study
    assessments: frozenset[str] = frozenset()  # "BI-RADS 4", "PI-RADS 3"

    @classmethod
    def of(cls, *, calling_aet: str | None = None, department: str | None = None, procedure_codes: Iterable[str] = (),
           description: str | None = None, modalities: Iterable[str] = (), mg_views: Iterable[tuple[str, str]] = (),
           regions: Iterable[str] = (), assessments: Iterable[str] = ()) -> ScreeningFacts:
        return cls(normalise_text(calling_aet) or None, normalise_text(department) or None,
                   frozenset(c.strip().upper() for c in procedure_codes), normalise_text(description),
                   frozenset(normalise_text(m) for m in modalities), frozenset(mg_views), frozenset(regions),
                   frozenset(assessments))


@dataclass(frozen=True)
class ScreeningContext:
    programme: Programme
    programme_source: str  # "rule 1", "procedure code", "mammography views", "default"
    cancer_type: CancerType
    cancer_type_source: str  # "rule 2", "collection", "procedure code", "assessment", "body region", "default"

    def condition(self, collection_condition: Condition | None) -> Condition | None:
        """The study's diagnosis: the collection's condition, else its cancer type's (None for other)."""
        return collection_condition or CANCER_CONDITIONS.get(self.cancer_type)


def _code_matches(wanted: str, held: frozenset[str]) -> bool:
    return wanted in held if ":" in wanted else any(code.split(":", 1)[-1] == wanted for code in held)


def rule_matches(rule: ScreeningRule, facts: ScreeningFacts) -> bool:
    if rule.calling_aets and facts.calling_aet not in rule.calling_aets:
        return False
    if rule.departments and facts.department not in rule.departments:
        return False
    if rule.procedure_codes and not any(_code_matches(c, facts.procedure_codes) for c in rule.procedure_codes):
        return False
    if rule.description_keywords and not any(f" {k} " in f" {facts.description} " for k in rule.description_keywords):
        return False
    if rule.modalities and not facts.modalities & set(rule.modalities):
        return False
    return True


def screening_context(config: ScreeningConfig, facts: ScreeningFacts, collection_condition: Condition | None) -> ScreeningContext:
    programme: tuple[Programme, str] | None = None
    cancer: tuple[CancerType, str] | None = None
    for number, rule in enumerate(config.rules, start=1):
        if (programme and cancer) or not rule_matches(rule, facts):
            continue
        if programme is None and rule.programme is not None:
            programme = (rule.programme, f"rule {number}")
        if cancer is None and rule.cancer_type is not None:
            cancer = (rule.cancer_type, f"rule {number}")
    evidence = [PROCEDURE_EVIDENCE[c] for c in sorted(facts.procedure_codes) if c in PROCEDURE_EVIDENCE]
    if programme is None:
        programme = _programme_from_images(config, facts, evidence)
    if cancer is None and collection_condition is not None and collection_condition.code in _CONDITION_CANCER:
        cancer = (_CONDITION_CANCER[collection_condition.code], "collection")
    if cancer is None:
        cancer = _cancer_from_images(facts, evidence, screening=programme[0].endswith("screening"))
    return ScreeningContext(programme[0], programme[1], cancer[0], cancer[1])


def _programme_from_images(config: ScreeningConfig, facts: ScreeningFacts,
                           evidence: list[tuple[str, CancerType]]) -> tuple[Programme, str]:
    kinds = {kind for kind, _ in evidence}
    if "diagnostic" in kinds:  # a diagnostic code beside a screening one: the work-up, not the screen
        return "diagnostic", "procedure code"
    if "screening" in kinds:
        return config.image_screening_programme, "procedure code"
    if "MG" in facts.modalities and STANDARD_MG_VIEWS <= facts.mg_views:
        return config.image_screening_programme, "mammography views"
    return "unknown", "default"


def _cancer_from_images(facts: ScreeningFacts, evidence: list[tuple[str, CancerType]], *,
                        screening: bool) -> tuple[CancerType, str]:
    types = {cancer for _, cancer in evidence}
    if len(types) == 1:
        return types.pop(), "procedure code"
    kinds = {a.split(" ", 1)[0] for a in facts.assessments}
    if kinds == {"BI-RADS"}:
        return "breast", "assessment"
    if kinds == {"PI-RADS"}:
        return "prostate", "assessment"
    found = [t for t, region in (("breast", BREAST), ("prostate", PROSTATE)) if region in facts.regions]
    if screening and LUNG in facts.regions and "CT" in facts.modalities:
        found.append("lung")
    if len(found) == 1:
        return found[0], "body region"
    return "other", "default"


# -- BI-RADS and PI-RADS assessments in structured reports ----------------------------------------------------------

#: CID 6027 (Assessment): DCM 111170 … 111176 are BI-RADS categories 0 … 6 (PS3.16).
_BIRADS_DCM = {f"DCM:11117{n}": n for n in range(7)}
#: The explorer's values for the BI-RADS / PI-RADS key (search-keys.json; EUCAIM hyper-ontology IMG10054xx).
ASSESSMENT_CODES = {
    **{f"BI-RADS {n}": f"EUCAIM_Hyper-Ontology_V1.0.IMG100{code}" for n, code in
       enumerate((5470, 5469, 5468, 5466, 5465, 5464, 5463))},
    **{f"PI-RADS {n}": f"EUCAIM_Hyper-Ontology_V1.0.IMG100{code}" for n, code in
       zip(range(1, 6), (5479, 5478, 5477, 5476, 5475), strict=True)},
}
_CATEGORY = re.compile(r"\b(BI ?RADS|PI ?RADS|CATEGORY)\s*([0-6])[ABC]?\b")
_ASSESSMENT_CONCEPTS = {"DCM:111005"}  # Assessment Category (TID 4200 breast imaging report, TID 4203)


def _kind(*texts: str) -> str | None:
    joined = " ".join(texts)
    if "PI RADS" in joined or "PIRADS" in joined:
        return "PI-RADS"
    if "BI RADS" in joined or "BIRADS" in joined:
        return "BI-RADS"
    return None


def assessment_of(concept: tuple[str, str], value: tuple[str, str] | None, number: float | None = None) -> str | None:
    """One content item as ``"BI-RADS n"`` / ``"PI-RADS n"``, or None.

    ``concept`` and ``value`` are (``SCHEME:VALUE``, CodeMeaning) of the concept name and of a CODE item's value;
    ``number`` is a NUM item's value. Understood: concept DCM 111005 "Assessment Category" with a CID 6027 value
    (DCM 111170–111176) or a meaning naming the category ("BI-RADS 4", "Category 4 - Suspicious"); any concept whose
    meaning names BI-RADS or PI-RADS, with such a value or a number."""
    concept_code, concept_meaning = concept[0].upper(), normalise_text(concept[1])
    value_code, value_meaning = (value[0].upper(), normalise_text(value[1])) if value else ("", "")
    kind = _kind(concept_meaning, value_meaning)
    if value_code in _BIRADS_DCM and kind != "PI-RADS":
        return f"BI-RADS {_BIRADS_DCM[value_code]}"
    if kind is None and concept_code not in _ASSESSMENT_CONCEPTS:
        return None
    kind = kind or "BI-RADS"
    category: int | None = None
    if number is not None and float(number).is_integer():
        category = int(number)
    elif match := _CATEGORY.search(value_meaning):
        category = int(match.group(2))
    label = f"{kind} {category}"
    return label if label in ASSESSMENT_CODES else None
