"""The federated search compiler: every construct, the reference requests, and clear errors."""

import json
from pathlib import Path

import pytest

from eucaim_node.catalogue.search import REQUEST_EXAMPLES_FILE, QueryCompiler, QueryError

REFERENCE = REQUEST_EXAMPLES_FILE
compiler = QueryCompiler()


def cond(key, ctype, value):
    return {"key": key, "type": ctype, "value": value, "system": ""}


def test_every_reference_request_compiles_or_is_refused_with_a_clear_message():
    examples = json.loads(REFERENCE.read_text())["examples"]
    outcomes = {}
    for example in examples:
        try:
            compiler.compile_request(json.loads(example["raw"]))
            outcomes[example["name"]] = "ok"
        except QueryError as exc:
            outcomes[example["name"]] = str(exc)
    assert outcomes["eucaim_api_empty"] == "ok" and outcomes["eucaim_api_just_right"] == "ok"
    assert outcomes["generic_equals_number"] == "ok"  # "age" is Focus's eucaim-api name for age
    assert outcomes["generic_extra_fields_nodeType"] == "ok"
    assert "unsupported search key 'diagnosis_age_donor'" in outcomes["generic_between_range"]
    assert len(outcomes) == len(examples)


def test_the_explorers_canonical_shape():
    query = compiler.compile({"operand": "OR", "children": [{"operand": "AND", "children": [
        {"operand": "OR", "children": [cond("SNOMEDCT263495000", "EQUALS", "SNOMEDCT248153007")]},
        {"operand": "OR", "children": [cond("RID10311", "EQUALS", "RID10312")]}]}]})
    assert query.filter == {"$and": [{"sex_code": "SNOMEDCT248153007"}, {"modality_codes": "RID10312"}]}
    assert query.conditions == 2 and query.keys == ("gender", "modality")


def test_empty_groups_add_no_constraint():
    assert compiler.compile({"operand": "OR", "children": []}).filter == {}
    assert compiler.compile({"operand": "OR", "children": [{"operand": "AND", "children": []}]}).filter == {}


@pytest.mark.parametrize(("condition", "expected"), [
    (cond("RID10311", "NOT_EQUALS", "RID10321"),
     {"$or": [{"$and": [{"modality_codes": {"$ne": "RID10321"}}, {"modality_codes.0": {"$exists": True}}]},
              {"modality_codes.1": {"$exists": True}}]}),
    (cond("SNOMEDCT263495000", "NOT_EQUALS", "SNOMEDCT248153007"), {"sex_code": {"$ne": "SNOMEDCT248153007"}}),
    (cond("SNOMEDCT123037004", "IN", ["SNOMEDCT76752008", "SNOMEDCT816092008"]),
     {"body_region_codes": {"$in": ["SNOMEDCT12921003", "SNOMEDCT76752008"]}}),  # the dataset-service pelvis code is an alias
    (cond("C25392", "EQUALS", "C200140"), {"manufacturer_codes": "birnlex_3066"}),
    (cond("C25392", "CONTAINS", "Sie.mens"), {"manufacturers": {"$regex": "Sie\\.mens", "$options": "i"}}),
    (cond("SNOMEDCT439401001", "EQUALS", "SNOMEDCT363358000"), {"condition_code": "SNOMEDCT363358000"}),
    (cond("SNOMEDCT423493009", "BETWEEN", {"min": 30, "max": 70}), {"age_years": {"$gte": 30.0, "$lt": 71.0}}),
    (cond("SNOMEDCT423493009", "BETWEEN", {"min": 30}), {"age_years": {"$gte": 30.0}}),
    (cond("SNOMEDCT423493009", "EQUALS", 45.0), {"age_years": {"$gte": 45.0, "$lt": 46.0}}),
    (cond("SNOMEDCT423493009", "NOT_EQUALS", 45), {"$or": [{"age_years": {"$lt": 45.0}}, {"age_years": {"$gte": 46.0}}]}),
    (cond("SNOMEDCT423493009", "LOWER_THAN", 50), {"age_years": {"$lt": 50.0}}),
    (cond("SNOMEDCT423493009", "GREATER_THAN", 50), {"age_years": {"$gte": 51.0}}),
    (cond("SNOMEDCT123037004", "EQUALS", "SNOMEDCT261665006"), {"body_region_codes": "SNOMEDCT261665006"}),
])
def test_each_condition_type(condition, expected):
    assert compiler.compile(condition).filter == expected


def test_or_and_nesting():
    query = compiler.compile({"operand": "AND", "children": [
        {"operand": "OR", "children": [cond("RID10311", "EQUALS", "RID10321"), cond("RID10311", "EQUALS", "RID10312")]},
        cond("SNOMEDCT423493009", "LOWER_THAN", 70)]})
    assert query.filter == {"$and": [{"$or": [{"modality_codes": "RID10321"}, {"modality_codes": "RID10312"}]},
                                     {"age_years": {"$lt": 70.0}}]}


def test_canonical_form_ignores_members_the_evaluation_ignores():
    a = compiler.compile({"operand": "OR", "nodeType": "branch", "children": [cond("RID10311", "EQUALS", "RID10321")]})
    b = compiler.compile({"operand": "OR", "children": [{"key": "RID10311", "type": "EQUALS", "value": "RID10321"}]})
    assert a.canonical == b.canonical


@pytest.mark.parametrize(("body", "message"), [
    ([], "body: the request body must be a JSON object"),
    ({"id": "x"}, "body: missing member 'ast'"),
    ({"ast": {"operand": "XOR", "children": []}}, "ast.operand: unknown operand 'XOR'"),
    ({"ast": {"operand": "AND", "children": {}}}, "ast.children: 'children' must be an array"),
    ({"ast": {"operand": "AND", "children": [cond("RID10311", "LIKE", "x")]}}, "ast.children[0].type: unknown condition type"),
    ({"ast": cond("nope", "EQUALS", "x")}, "ast.key: unsupported search key 'nope'"),
    ({"ast": cond("EUCAIM_Hyper-Ontology_V1.0.CLIN1045815", "LIKE", "x")}, "ast.type: unknown condition type"),
    ({"ast": {"key": "EUCAIM_Hyper-Ontology_V1.0.CLIN1033410", "type": "BETWEEN"}}, "ast.value: missing 'value'"),
    ({"ast": cond("EUCAIM_Hyper-Ontology_V1.0.IMG1005459", "EQUALS", "BI-RADS 4")}, "is not a BI-RADS/PI-RADS assessment code"),
    ({"ast": cond("EUCAIM_Hyper", "EQUALS", "x")}, "unsupported search key"),
    ({"ast": cond("RID10311", "BETWEEN", {"min": 1})}, "BETWEEN does not apply to modality"),
    ({"ast": cond("SNOMEDCT423493009", "IN", [1])}, "IN does not apply to age at diagnosis"),
    ({"ast": cond("SNOMEDCT423493009", "EQUALS", "old")}, "ast.value: expected a number"),
    ({"ast": cond("SNOMEDCT423493009", "BETWEEN", {"min": 70, "max": 30})}, "min is greater than max"),
    ({"ast": cond("RID10311", "IN", "RID10312")}, "IN needs an array"),
    ({"ast": cond("SNOMEDCT439401001", "EQUALS", "lung cancer")}, "is not a diagnosis code"),
    ({"ast": {"key": "RID10311", "type": "EQUALS"}}, "missing 'value'"),
    ({"ast": "RID10311"}, "expected an operation"),
])
def test_malformed_queries_are_refused_with_a_message_naming_the_place(body, message):
    with pytest.raises(QueryError) as error:
        compiler.compile_request(body)
    assert message in str(error.value)


def test_oversized_trees_are_refused():
    deep: dict = cond("RID10311", "EQUALS", "RID10321")
    for _ in range(40):
        deep = {"operand": "AND", "children": [deep]}
    with pytest.raises(QueryError, match="nested deeper"):
        compiler.compile(deep)
    wide = {"operand": "OR", "children": [cond("RID10311", "EQUALS", "RID10321")] * 600}
    with pytest.raises(QueryError, match="more than 512 nodes"):
        compiler.compile(wide)


SEARCH_KEYS = json.loads((Path(__file__).resolve().parent / "data" / "search-keys.json").read_text())
BREAST, LUNG, PELVIS, PROSTATE = "SNOMEDCT76752008", "SNOMEDCT39607008", "SNOMEDCT12921003", "SNOMEDCT41216001"


def _explorer_keys(supported: bool) -> list[dict]:
    keys = [k for g in SEARCH_KEYS["groups"] for k in g["keys"]]
    return [k for k in keys if k.get("dataset_service", {}).get("supported", False) is supported]


@pytest.mark.parametrize("key", _explorer_keys(False) + [
    k for k in _explorer_keys(True) if k["key"] == "SNOMEDCT432213005"], ids=lambda k: k["name"][:40])
def test_every_explorer_key_the_node_lacks_meets_no_study_and_is_named_not_refused(key):
    """As the reference node: a key without data is a condition no study meets, never a 422; the audit names it."""
    value = key["values"][0]["code"] if key["values"] else {"min": 1, "max": 10}
    ctype = "BETWEEN" if not key["values"] else "EQUALS"
    if key["key"] == "EUCAIM_Hyper-Ontology_V1.0.IMG1005459":  # BI-RADS/PI-RADS: held (from SR documents)
        assert compiler.compile(cond(key["key"], ctype, value)).unanswered == ()
        return
    alone = compiler.compile(cond(key["key"], ctype, value))
    assert alone.unanswered == (key["key"],) and alone.filter == {"_id": {"$in": []}}
    assert alone.canonical == '["false"]'
    # In the explorer's shape beside a held key: the AND meets no study, an OR keeps the other branch.
    both = compiler.compile({"operand": "AND", "children": [cond("RID10311", "EQUALS", "RID10321"), cond(key["key"], ctype, value)]})
    assert both.canonical == '["false"]' and both.unanswered == (key["key"],)
    either = compiler.compile({"operand": "OR", "children": [cond("RID10311", "EQUALS", "RID10321"), cond(key["key"], ctype, value)]})
    assert either.canonical == compiler.compile(cond("RID10311", "EQUALS", "RID10321")).canonical


def test_an_assessment_condition_reads_the_studys_assessment_codes():
    birads4 = "EUCAIM_Hyper-Ontology_V1.0.IMG1005465"
    assert compiler.compile(cond("EUCAIM_Hyper-Ontology_V1.0.IMG1005459", "EQUALS", birads4)).filter == {"assessment_codes": birads4}


def test_body_part_matches_the_regions_a_series_images():
    """Body part compiles onto body_region_codes (coding.py regions); NOT_EQUALS means no series images it."""
    assert compiler.compile(cond("SNOMEDCT123037004", "EQUALS", LUNG)).filter == {"body_region_codes": LUNG}
    assert compiler.compile(cond("SNOMEDCT123037004", "NOT_EQUALS", LUNG)).filter == {"body_region_codes": {"$ne": LUNG}}


def test_programme_is_a_filter_on_the_studys_programme():
    assert compiler.compile(cond("programme", "EQUALS", "organised-screening")).filter == {"programme": "organised-screening"}
    assert compiler.compile(cond("programme", "IN", ["diagnostic", "unknown"])).filter == {
        "programme": {"$in": ["diagnostic", "unknown"]}}
    with pytest.raises(QueryError, match="is not a programme code .expected e.g. organised-screening"):
        compiler.compile(cond("programme", "EQUALS", "screening"))
    # The federation's "unknown" code means the stored "unknown" programme.
    assert compiler.compile(cond("programme", "EQUALS", "SNOMEDCT261665006")).filter == {"programme": "unknown"}
