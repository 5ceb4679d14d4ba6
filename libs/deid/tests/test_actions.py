"""One test per Table E.1-1 action code, through the engine (PS3.15 E.1)."""

from eucaim_node.deid import BASIC, EUCAIM_DEFAULT, Option, pseudonymise_uid
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .conftest import KEY, make_ct
from .helpers import released, run


def test_x_removes() -> None:
    out = released(make_ct(OtherPatientIDs="OLD-1", PatientComments="x"), BASIC)
    assert "OtherPatientIDs" not in out
    assert "PatientComments" not in out
    assert "PatientAddress" not in out


def test_z_empties() -> None:
    out = released(make_ct(), BASIC)
    assert "AccessionNumber" in out and out.AccessionNumber == ""
    assert out.StudyDate == ""  # Z in Basic
    assert out.PatientSex == ""  # Z unless Retain Patient Characteristics


def test_d_replaces_with_dummy() -> None:
    ds = make_ct(ClinicalTrialSponsorName="Sponsor Garcia")
    out = released(ds, BASIC)
    assert out.ClinicalTrialSponsorName == "ANONYMIZED"


def test_k_keeps_and_recurses() -> None:
    profile = BASIC.with_options(Option.RETAIN_INSTITUTION_IDENTITY)
    out = released(make_ct(), profile)
    assert out.InstitutionName == "Hospital La Fe"


def test_c_cleans_text_keeping_the_rest() -> None:
    ds = make_ct(ImageComments="Garcia called 600123456 on 2024-01-15, lesion 12 mm")
    out = released(ds, EUCAIM_DEFAULT)
    assert "Garcia" not in out.ImageComments
    assert "600123456" not in out.ImageComments
    assert "2024-01-15" not in out.ImageComments
    assert "lesion 12 mm" in out.ImageComments


def test_u_replaces_uids_at_every_depth() -> None:
    inner = Dataset()
    inner.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    inner.ReferencedSOPInstanceUID = "1.2.3.4.99"
    outer = Dataset()
    outer.ReferencedSeriesSequence = Sequence([Dataset()])
    outer.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.4.98"
    outer.ReferencedSeriesSequence[0].ReferencedInstanceSequence = Sequence([inner])
    ds = make_ct()
    ds.SourceImageSequence = Sequence([outer])
    out = released(ds)
    series = out.SourceImageSequence[0].ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == pseudonymise_uid("1.2.3.4.98", KEY)
    assert series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == pseudonymise_uid("1.2.3.4.99", KEY)
    assert series.ReferencedInstanceSequence[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"


def test_uid_not_in_table_is_remapped() -> None:
    ds = make_ct()
    ds.add_new(0x00209164, "UI", "1.2.3.4.77")  # Dimension Organization UID (in table: U)
    ds.add_new(0x0040A124, "UI", "1.2.3.4.78")  # UID (content item value)
    out = released(ds)
    assert out[0x00209164].value == pseudonymise_uid("1.2.3.4.77", KEY)
    assert out[0x0040A124].value == pseudonymise_uid("1.2.3.4.78", KEY)


def test_well_known_uids_kept() -> None:
    ds = make_ct(FrameOfReferenceUID="1.2.840.10008.1.4.1.1")  # Talairach frame (PS3.6 A-2)
    out = released(ds)
    assert out.FrameOfReferenceUID == "1.2.840.10008.1.4.1.1"


def test_overlay_removed_as_a_whole_group() -> None:
    ds = make_ct()
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", b"\x00\x00")
    out = released(ds)
    assert not [e for e in out if e.tag.group == 0x6000]


def test_curves_removed() -> None:
    ds = make_ct()
    ds.add_new(0x50000005, "US", 2)
    ds.add_new(0x50003000, "OW", b"\x00\x00")
    out = released(ds)
    assert not [e for e in out if e.tag.group == 0x5000]


def test_safe_private_retained_only_when_listed() -> None:
    ds = make_ct()
    ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019100C, "IS", "1000")  # B value: on the safe-list
    ds.add_new(0x0019100A, "US", 7)  # not on the safe-list
    out = released(ds, EUCAIM_DEFAULT.with_options(Option.RETAIN_SAFE_PRIVATE))
    assert out[0x0019100C].value == 1000 or str(out[0x0019100C].value) == "1000"
    assert 0x0019100A not in out
    assert out[0x00190010].value == "SIEMENS MR HEADER"
    assert 0x00091001 not in out and 0x00090010 not in out
    plain = released(ds)
    assert not [e for e in plain if e.tag.is_private]


def test_group_length_and_misplaced_meta_removed() -> None:
    ds = make_ct()
    ds.add_new(0x00080000, "UL", 100)
    out = released(ds)
    assert 0x00080000 not in out


def test_unknown_vr_element_with_phi_blocks_release() -> None:
    ds = make_ct()
    ds.add_new(0x00080202, "UN", b"Garcia^Maria")  # a public tag unknown to the dictionary
    result = run(ds)
    assert not result.released
    reason = result.reasons[0]
    assert reason.code == "phi-guard"
    assert "Garcia" not in reason.message and "Maria" not in reason.message


def test_clean_graphics_removes_overlay_bitmaps_but_cleans_comments() -> None:
    ds = make_ct()
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60000011, "US", 4)
    ds.add_new(0x60003000, "OW", b"\x00\x00")
    ds.add_new(0x60024000, "LT", "Garcia overlay note")
    out = released(ds, EUCAIM_DEFAULT.with_options(Option.CLEAN_GRAPHICS))
    assert not [e for e in out if e.tag.group == 0x6000]
    assert out[0x60024000].value == "*** overlay note"
