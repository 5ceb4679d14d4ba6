"""SEG and SR: reference integrity and Table E.3.4-1 content items (PS3.15 E.3.4)."""

from eucaim_node.deid import EUCAIM_DEFAULT, Option

from .builders import make_seg, make_sr
from .conftest import make_ct
from .helpers import released


def test_seg_points_at_deidentified_source() -> None:
    ct = released(make_ct())
    seg = released(make_seg())
    assert seg.StudyInstanceUID == ct.StudyInstanceUID
    assert seg.FrameOfReferenceUID == ct.FrameOfReferenceUID
    series = seg.ReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == ct.SeriesInstanceUID
    assert series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == ct.SOPInstanceUID
    source = seg.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
    assert source.ReferencedSOPInstanceUID == ct.SOPInstanceUID
    assert seg.PatientID == ct.PatientID


def test_seg_keeps_segments_and_cleans_free_text() -> None:
    seg = released(make_seg())
    assert seg.SegmentSequence[0].SegmentLabel == "Nodule"
    assert "Garcia" not in seg.ContentDescription
    assert seg.ContentLabel == "LUNG"
    assert seg.DeviceSerialNumber == "ANONYMIZED"  # Type 1 in Enhanced General Equipment: D
    assert seg.ContentCreatorName == ""  # Z/D, Type 2 in the Content Identification macro
    assert seg.PixelData == b"\x0f\x00"


def test_sr_references_remapped_consistently() -> None:
    ct = released(make_ct())
    sr = released(make_sr())
    image = sr.ContentSequence[-1]
    assert image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == ct.SOPInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == ct.StudyInstanceUID
    assert evidence.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.SeriesInstanceUID


def _by_code(sr, code_value: str):
    return [i for i in sr.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue == code_value]


def test_sr_content_items_per_table_e_3_4_1() -> None:
    sr = released(make_sr(), EUCAIM_DEFAULT.with_options(Option.CLEAN_STRUCTURED_CONTENT))
    assert not _by_code(sr, "121022")  # Accession Number item: X
    (finding,) = _by_code(sr, "121071")
    assert "Garcia" not in finding.TextValue
    assert "Nodule 8 mm" in finding.TextValue
    (observer,) = _by_code(sr, "121008")
    assert str(observer.PersonName) != "Lopez^Jorge"
    (study_date,) = _by_code(sr, "111060")
    assert study_date.Date == sr.StudyDate != "20240115"  # shifted like the header date


def test_sr_under_default_profile_never_leaks() -> None:
    sr = released(make_sr())
    text = str(sr)
    for value in ("Garcia", "Lopez", "ACC998877", "HOSP-000123", "19700131"):
        assert value not in text
