"""Burned-in annotation and high-risk SOP classes (PS3.15 E.3.1, E.3.2)."""

from dataclasses import replace

from eucaim_node.deid import EUCAIM_DEFAULT, AllowRule

from .conftest import make_ct
from .helpers import run

US = "1.2.840.10008.5.1.4.1.1.6.1"
SC = "1.2.840.10008.5.1.4.1.1.7"
PDF = "1.2.840.10008.5.1.4.1.1.104.1"


def _codes(result) -> set[str]:
    return {r.code for r in result.reasons}


def test_burned_in_annotation_quarantined() -> None:
    result = run(make_ct(BurnedInAnnotation="YES"))
    assert not result.released
    assert _codes(result) == {"burned-in-annotation"}
    assert result.study_instance_uid  # the study key is reported even for quarantine


def test_high_risk_sop_classes_quarantined() -> None:
    for sop_class, modality in ((US, "US"), (SC, "OT"), (PDF, "DOC")):
        result = run(make_ct(SOPClassUID=sop_class, Modality=modality))
        assert _codes(result) == {"high-risk-modality"}, sop_class


def test_high_risk_modality_with_other_class() -> None:
    assert _codes(run(make_ct(Modality="XC"))) == {"high-risk-modality"}


def test_allow_rule_releases_matching_instances() -> None:
    profile = replace(EUCAIM_DEFAULT, allow=(AllowRule(sop_class_uid=US, manufacturer="acme"),))
    assert run(make_ct(SOPClassUID=US, Modality="US", Manufacturer="ACME Ultrasound"), profile).released
    assert not run(make_ct(SOPClassUID=US, Modality="US", Manufacturer="Other"), profile).released


def test_burned_in_needs_explicit_allow() -> None:
    profile = replace(EUCAIM_DEFAULT, allow=(AllowRule(modality="CT"),))
    assert not run(make_ct(BurnedInAnnotation="YES"), profile).released
    profile = replace(EUCAIM_DEFAULT, allow=(AllowRule(modality="CT", burned_in_annotation_yes=True),))
    assert run(make_ct(BurnedInAnnotation="YES"), profile).released


def test_high_risk_quarantine_can_be_disabled() -> None:
    profile = replace(EUCAIM_DEFAULT, quarantine_high_risk=False)
    assert run(make_ct(SOPClassUID=SC, Modality="OT"), profile).released
