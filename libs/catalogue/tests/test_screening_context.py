"""Screening context: the precedence of rules, collection condition and image evidence, and SR assessments."""

import pytest

from eucaim_node.catalogue.config import Condition, ScreeningConfig, ScreeningRule, bundled_config_path, load_config
from eucaim_node.catalogue.screening import ASSESSMENT_CODES, ScreeningFacts, assessment_of, screening_context

EXAMPLE = load_config(bundled_config_path("collections.example.yaml")).screening
LUNG_CANCER = Condition(code="SNOMEDCT363358000", label="Lung cancer")
BREAST, LUNG, PROSTATE, CHEST = "SNOMEDCT76752008", "SNOMEDCT39607008", "SNOMEDCT41216001", "SNOMEDCT43799004"
FOUR_VIEWS = {("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")}


def context(facts: dict, condition=None, config: ScreeningConfig = EXAMPLE):
    c = screening_context(config, ScreeningFacts.of(**facts), condition)
    return c.programme, c.programme_source, c.cancer_type, c.cancer_type_source


@pytest.mark.parametrize(("facts", "condition", "expected"), [
    # 1. a rule wins over everything the images say, per field.
    ({"department": "Breast Screening Programme", "modalities": ["MG"], "procedure_codes": ["LN:24605-8"]}, None,
     ("organised-screening", "rule 1", "breast", "rule 1")),
    ({"calling_aet": "MAMMO_PROG", "modalities": ["MG"]}, None, ("organised-screening", "rule 2", "breast", "rule 2")),
    # A rule that sets only the programme leaves the cancer type to the collection, then the images.
    ({"description": "Lung CT follow-up", "modalities": ["CT"], "regions": [CHEST, LUNG]}, LUNG_CANCER,
     ("diagnostic", "rule 4", "lung", "collection")),
    ({"description": "SCREENING MAMMOGRAPHY", "modalities": ["MG"], "regions": [BREAST]}, None,
     ("opportunistic-screening", "rule 5", "breast", "body region")),
    # 2. known procedure codes: screening (LOINC 24606-6) and diagnostic (24605-8, which wins over screening).
    ({"procedure_codes": ["LN:24606-6"], "modalities": ["MG"]}, None,
     ("opportunistic-screening", "procedure code", "breast", "procedure code")),
    ({"procedure_codes": ["ln:24606-6", "LN:24605-8"], "modalities": ["MG"]}, None,
     ("diagnostic", "procedure code", "breast", "procedure code")),
    # 3. the four standard views make a screening mammogram; three do not.
    ({"modalities": ["MG"], "mg_views": FOUR_VIEWS, "regions": [BREAST]}, None,
     ("opportunistic-screening", "mammography views", "breast", "body region")),
    ({"modalities": ["MG"], "mg_views": FOUR_VIEWS - {("L", "MLO")}, "regions": [BREAST]}, None,
     ("unknown", "default", "breast", "body region")),
    # Images: assessments name the cancer; a chest CT is lung cancer only in a screening programme.
    ({"modalities": ["SR", "MR"], "assessments": ["PI-RADS 4"]}, None, ("unknown", "default", "prostate", "assessment")),
    ({"modalities": ["CT"], "regions": [CHEST, LUNG]}, None, ("unknown", "default", "other", "default")),
    ({"modalities": ["CT"], "regions": [CHEST, LUNG], "description": "LDCT SCREENING"}, None,
     ("opportunistic-screening", "rule 5", "lung", "body region")),
    # 4. defaults.
    ({"modalities": ["MR"], "description": "KNEE"}, None, ("unknown", "default", "other", "default")),
])
def test_precedence_rules_then_collection_then_images_then_defaults(facts, condition, expected):
    assert context(facts, condition) == expected


def test_image_evidence_means_the_configured_kind_of_screening_and_codes_match_with_or_without_scheme():
    organised = ScreeningConfig(image_screening_programme="organised-screening")
    assert context({"modalities": ["MG"], "mg_views": FOUR_VIEWS}, config=organised)[0] == "organised-screening"
    by_value = ScreeningConfig(rules=(ScreeningRule(programme="diagnostic", procedure_codes=("RPID123",)),))
    assert context({"procedure_codes": ["RADLEX:RPID123"]}, config=by_value)[:2] == ("diagnostic", "rule 1")
    assert context({"procedure_codes": ["RADLEX:RPID1234"]}, config=by_value)[:2] == ("unknown", "default")


def test_the_studys_diagnosis_is_the_collections_else_its_cancer_types():
    c = screening_context(EXAMPLE, ScreeningFacts.of(modalities=["MG"], regions=[BREAST]), None)
    assert c.condition(None).code == "SNOMEDCT254837009"
    assert c.condition(LUNG_CANCER) is LUNG_CANCER
    other = screening_context(EXAMPLE, ScreeningFacts.of(modalities=["MR"]), None)
    assert other.condition(None) is None


@pytest.mark.parametrize(("concept", "value", "number", "expected"), [
    (("DCM:111005", "Assessment Category"), ("DCM:111174", "Suspicious"), None, "BI-RADS 4"),  # CID 6027
    (("DCM:111005", "Assessment Category"), ("DCM:111170", "Incomplete"), None, "BI-RADS 0"),
    (("DCM:111005", "Assessment Category"), ("99X:C5", "Category 5 - Highly suggestive"), None, "BI-RADS 5"),
    (("LN:XX", "BI-RADS assessment"), ("99X:4A", "BI-RADS 4A"), None, "BI-RADS 4"),
    (("99X:P", "PI-RADS assessment category"), ("99X:P4", "PI-RADS 4"), None, "PI-RADS 4"),
    (("99X:P", "PI-RADS v2.1 score"), None, 3.0, "PI-RADS 3"),
    (("99X:P", "PI-RADS score"), None, 6.0, None),  # no PI-RADS 6
    (("DCM:121071", "Finding"), ("99X:X", "Category 4"), None, None),  # not an assessment concept
    (("DCM:111005", "Assessment Category"), ("99X:X", "see text"), None, None),
])
def test_assessments_read_from_report_items(concept, value, number, expected):
    assert assessment_of(concept, value, number) == expected


def test_every_assessment_is_a_value_the_explorer_offers():
    import json
    from pathlib import Path

    keys = json.loads((Path(__file__).parent / "data" / "search-keys.json").read_text())
    offered = {v["code"]: v["display"] for g in keys["groups"] for k in g["keys"]
               if k["key"] == "EUCAIM_Hyper-Ontology_V1.0.IMG1005459" for v in k["values"]}
    assert {offered[code] for code in ASSESSMENT_CODES.values()} == set(ASSESSMENT_CODES)


@pytest.mark.parametrize(("rule", "message"), [
    ({"programme": "diagnostic"}, "needs at least one criterion"),
    ({"calling_aets": ["X"]}, "sets programme, cancer_type or both"),
    ({"programme": "screening", "calling_aets": ["X"]}, "programme"),
    ({"cancer_type": "colon", "calling_aets": ["X"]}, "cancer_type"),
])
def test_invalid_screening_rules_are_refused(rule, message):
    with pytest.raises(ValueError, match=message):
        ScreeningRule.model_validate(rule)
