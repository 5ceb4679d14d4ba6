"""The PHI guard and the cleaner that runs before it."""

from eucaim_node.deid import BASIC, EUCAIM_DEFAULT, Option
from eucaim_node.deid.cleaner import clean_text
from eucaim_node.deid.guard import check_phi
from eucaim_node.deid.identity import collect_identifying_values
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .conftest import make_ct
from .helpers import released, run


def _identity(**overrides):
    return collect_identifying_values(make_ct(**overrides), EUCAIM_DEFAULT)


def test_identity_collects_name_parts_ids_and_dates() -> None:
    identity = _identity()
    for text in ("Garcia", "Maria", "Luisa", "HOSP-000123", "ACC998877", "31/01/1970", "Lopez", "Hospital La Fe"):
        assert identity.find(f"x {text} y"), text
    assert identity.find("1.2.3.4.5.6.7.1")  # original UIDs too
    assert not identity.find("1.2.3.4.5.6.7.11")
    assert not identity.find("Garciano")  # whole words only
    assert not identity.find("SIEMENS")


def test_guard_names_element_not_value() -> None:
    ds = make_ct()
    ds.add_new(0x00080202, "UN", b"call Maria")
    result = run(ds)
    assert not result.released
    (reason,) = result.reasons
    assert reason.code == "phi-guard"
    assert reason.tag == "(0008,0202)"
    assert reason.rule == "phi-guard:PatientName"
    assert "Maria" not in repr(reason)


def test_guard_finds_nested_leaks() -> None:
    ds = make_ct()
    inner = Dataset()
    inner.CodeMeaning = "ACC998877"  # kept by the table; Basic has no Clean Descriptors
    ds.AnatomicRegionSequence = Sequence([inner])
    result = run(ds, BASIC)
    assert not result.released
    assert result.reasons[0].keyword == "AnatomicRegionSequence[0].CodeMeaning"


def test_cleaner_keeps_the_rest() -> None:
    identity = _identity()
    cleaned = clean_text("Dr Lopez: Garcia, MRN 12345678, tel +34 961 234 567, mail a.b@c.es", identity)
    for gone in ("Lopez", "Garcia", "12345678", "961", "a.b@c.es"):
        assert gone not in cleaned
    assert cleaned.startswith("Dr ***:")


def test_cleaner_respects_vr_length() -> None:
    assert len(clean_text("x" * 100, _identity(), "SH")) == 16


def test_description_quoting_name_loses_name_not_instance() -> None:
    out = released(make_ct(SeriesDescription="Maria Garcia T2 axial"))
    assert out.SeriesDescription == "*** T2 axial"


def test_guard_off_releases_what_guard_would_block() -> None:
    from dataclasses import replace

    ds = make_ct()
    ds.add_new(0x00080202, "UN", b"call Maria")
    assert run(ds, replace(EUCAIM_DEFAULT, phi_guard=False)).released


def test_retained_institution_is_not_a_leak() -> None:
    profile = BASIC.with_options(Option.RETAIN_INSTITUTION_IDENTITY)
    assert released(make_ct(), profile).InstitutionName == "Hospital La Fe"


def test_clean_descriptors_scrubs_text_outside_the_table() -> None:
    ds = make_ct()
    inner = Dataset()
    inner.CodeMeaning = "ACC998877 region"
    ds.AnatomicRegionSequence = Sequence([inner])
    assert released(ds).AnatomicRegionSequence[0].CodeMeaning == "*** region"


def test_check_phi_on_clean_dataset() -> None:
    identity = _identity()
    ds = Dataset()
    ds.SeriesDescription = "T1 axial"
    assert check_phi(ds, identity) == []
