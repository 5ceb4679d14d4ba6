"""The ten options of PS3.15 E.3 and the EUCAIM default profile."""

import pytest
from eucaim_node.deid import BASIC, EUCAIM_DEFAULT, Option, Profile, profile_named, pseudonymise_uid
from eucaim_node.deid.methods import CID_7050

from .conftest import KEY, make_ct
from .helpers import released


def test_eucaim_default_is_the_documented_set() -> None:
    assert EUCAIM_DEFAULT.options == {
        Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
        Option.RETAIN_PATIENT_CHARACTERISTICS,
        Option.CLEAN_DESCRIPTORS,
    }


def test_all_ten_options_selectable() -> None:
    assert len(Option) == 10
    for option in Option:
        profile = BASIC.with_options(option.cli_name)
        assert profile.has(option)
        released(make_ct(), profile)


def test_date_options_exclusive() -> None:
    with pytest.raises(ValueError):
        Profile(options=frozenset({Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES}))
    full = EUCAIM_DEFAULT.with_options("retain-longitudinal-full-dates")
    assert not full.has(Option.RETAIN_LONGITUDINAL_MODIFIED_DATES)


def test_unknown_option_and_profile() -> None:
    with pytest.raises(ValueError, match="choose from"):
        Option.parse("retain-everything")
    with pytest.raises(ValueError, match="choose from"):
        profile_named("nope")
    assert profile_named("basic", ("retain-uids",)).has(Option.RETAIN_UIDS)


def test_retain_uids() -> None:
    out = released(make_ct(), BASIC.with_options(Option.RETAIN_UIDS))
    assert out.StudyInstanceUID == "1.2.3.4.5.6.7.1"
    assert out.SOPInstanceUID == "1.2.3.4.5.6.7.8.1"
    assert out.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4.5.6.7.8.1"


def test_retain_device_identity() -> None:
    ds = make_ct(StationName="CTROOM3", DeviceSerialNumber="SN-4711")
    assert "StationName" not in released(ds, BASIC)
    out = released(ds, BASIC.with_options(Option.RETAIN_DEVICE_IDENTITY))
    assert out.StationName == "CTROOM3"
    assert out.DeviceSerialNumber == "SN-4711"


def test_retain_institution_identity() -> None:
    assert "InstitutionName" not in released(make_ct(), BASIC)
    assert released(make_ct(), BASIC.with_options(Option.RETAIN_INSTITUTION_IDENTITY)).InstitutionName


def test_retain_patient_characteristics() -> None:
    ds = make_ct(PatientWeight="70", PatientSize="1.70", SmokingStatus="NO")
    basic = released(ds, BASIC)
    assert "PatientAge" not in basic and "PatientWeight" not in basic
    out = released(ds, BASIC.with_options(Option.RETAIN_PATIENT_CHARACTERISTICS))
    assert out.PatientAge == "054Y" and out.PatientSex == "F"
    assert float(out.PatientWeight) == 70.0 and out.SmokingStatus == "NO"


def test_retain_full_dates() -> None:
    out = released(make_ct(), BASIC.with_options(Option.RETAIN_LONGITUDINAL_FULL_DATES))
    assert out.StudyDate == "20240115"
    assert out.LongitudinalTemporalInformationModified == "UNMODIFIED"


def test_retain_modified_dates() -> None:
    out = released(make_ct(), BASIC.with_options(Option.RETAIN_LONGITUDINAL_MODIFIED_DATES))
    assert out.StudyDate not in ("", "20240115")
    assert out.StudyTime == "101500"
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"
    assert released(make_ct(), BASIC).LongitudinalTemporalInformationModified == "REMOVED"


def test_clean_descriptors() -> None:
    ds = make_ct(SeriesDescription="Garcia follow-up T1")
    assert "SeriesDescription" not in released(ds, BASIC)
    out = released(ds, BASIC.with_options(Option.CLEAN_DESCRIPTORS))
    assert out.SeriesDescription == "*** follow-up T1"


def test_clean_graphics_keeps_text_annotations_cleaned() -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    text = Dataset()
    text.UnformattedTextValue = "Garcia lesion"
    annotation = Dataset()
    annotation.TextObjectSequence = Sequence([text])
    annotation.GraphicLayer = "L1"
    ds = make_ct()
    ds.GraphicAnnotationSequence = Sequence([annotation])
    profile = EUCAIM_DEFAULT.with_options(Option.CLEAN_GRAPHICS)
    out = released(ds, profile)
    value = out.GraphicAnnotationSequence[0].TextObjectSequence[0].UnformattedTextValue
    assert value == "*** lesion"


def test_method_code_sequence_lists_profile_and_options() -> None:
    out = released(make_ct())
    codes = [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert codes == ["113100", "113108", "113107", "113105"]
    assert all(item.CodingSchemeDesignator == "DCM" for item in out.DeidentificationMethodCodeSequence)
    assert all(len(v) <= 64 for v in out.DeidentificationMethod)
    assert {c for c, _ in CID_7050.values()} == {str(n) for n in range(113100, 113113)}


def test_uids_under_every_profile_match_study_key() -> None:
    for profile in (BASIC, EUCAIM_DEFAULT):
        assert released(make_ct(), profile).StudyInstanceUID == pseudonymise_uid("1.2.3.4.5.6.7.1", KEY)


def test_profile_file(tmp_path) -> None:
    from eucaim_node.deid import AllowRule, SafePrivate, load_profile

    path = tmp_path / "site.toml"
    path.write_text(
        'base = "eucaim"\nname = "site"\noptions = ["retain-safe-private"]\n'
        '[[allow]]\nsop_class_uid = "1.2.840.10008.5.1.4.1.1.6.1"\nmanufacturer = "ACME"\n'
        '[[safe_private]]\ngroup = 0x0019\ncreator = "SIEMENS MR HEADER"\nelement = 0x0C\n'
    )
    profile = load_profile(path)
    assert profile.name == "site"
    assert profile.has(Option.RETAIN_SAFE_PRIVATE) and profile.has(Option.CLEAN_DESCRIPTORS)
    assert profile.allow == (AllowRule(sop_class_uid="1.2.840.10008.5.1.4.1.1.6.1", manufacturer="ACME"),)
    assert profile.safe_private == (SafePrivate(0x0019, "SIEMENS MR HEADER", 0x0C),)
    assert profile_named(str(path)) == profile


def test_bad_profile_file(tmp_path) -> None:
    from eucaim_node.deid import load_profile

    path = tmp_path / "bad.toml"
    path.write_text("colour = 'blue'\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_profile(path)
    path.write_text("[[allow]]\nshoe = 1\n")
    with pytest.raises(ValueError):
        load_profile(path)
