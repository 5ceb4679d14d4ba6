"""Screening evidence from de-identified instances, as Orthanc's simplified tags show them."""

from eucaim_node.metadata.core.evidence import assessments, mammography_view, procedure_codes, study_evidence


def code(value, scheme, meaning):
    return {"CodeValue": value, "CodingSchemeDesignator": scheme, "CodeMeaning": meaning}


def test_procedure_codes_top_level_and_inside_request_attributes():
    tags = {"ProcedureCodeSequence": [code("24606-6", "LN", "MG Breast Screening")],
            "RequestAttributesSequence": [{"RequestedProcedureCodeSequence": [code("RPID1", "RADLEX", "x")]}],
            "RequestedProcedureCodeSequence": [{"CodeMeaning": "no value"}]}
    assert procedure_codes(tags) == {"LN:24606-6", "RADLEX:RPID1"}


def test_mammography_views_from_view_position_or_view_code():
    assert mammography_view({"ImageLaterality": "R", "ViewPosition": "CC"}) == ("R", "CC")
    assert mammography_view({"Laterality": "L", "ViewCodeSequence": [code("399368009", "SCT", "MLO")]}) == ("L", "MLO")
    assert mammography_view({"ViewPosition": "CC"}) is None  # no laterality: not one of the four views


def test_a_breast_imaging_report_gives_its_bi_rads_category_at_any_depth():
    report = {"Modality": "SR", "ValueType": "CONTAINER", "ContentSequence": [
        {"ValueType": "CONTAINER", "ConceptNameCodeSequence": [code("111402", "DCM", "Overall Assessment")],
         "ContentSequence": [
             {"ValueType": "CODE", "ConceptNameCodeSequence": [code("111005", "DCM", "Assessment Category")],
              "ConceptCodeSequence": [code("111174", "DCM", "Suspicious")]},
             {"ValueType": "TEXT", "ConceptNameCodeSequence": [code("121071", "DCM", "Finding")], "TextValue": "BI-RADS 2"}]},
        {"ValueType": "NUM", "ConceptNameCodeSequence": [code("P", "99X", "PI-RADS score")],
         "MeasuredValueSequence": [{"NumericValue": "3"}]}]}
    assert assessments(report) == {"BI-RADS 4", "PI-RADS 3"}  # free text is never read as an assessment
    assert assessments({"ContentSequence": "garbage"}) == set()


def test_study_evidence_gathers_the_four_views_over_instances():
    views = [{"Modality": "MG", "ImageLaterality": side, "ViewPosition": view} for side in "RL" for view in ("CC", "MLO")]
    evidence = study_evidence([*views, {"Modality": "CT", "ImageLaterality": "R", "ViewPosition": "CC"}])
    assert evidence["mg_views"] == {("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")}
