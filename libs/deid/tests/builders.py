"""Synthetic SR and SEG instances that reference a CT (for reference-integrity tests)."""

from __future__ import annotations

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _patient(ds: Dataset) -> None:
    ds.PatientName = "Garcia^Maria^Luisa"
    ds.PatientID = "HOSP-000123"
    ds.PatientBirthDate = "19700131"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = "1.2.3.4.5.6.7.1"
    ds.StudyDate = "20240115"
    ds.StudyTime = "101500"
    ds.AccessionNumber = "ACC998877"
    ds.ReferringPhysicianName = "Lopez^Jorge"
    ds.StudyID = "S12345"


def _meta(ds: Dataset) -> None:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


def content_item(value_type: str, concept: Dataset, **values: object) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = value_type
    item.ConceptNameCodeSequence = Sequence([concept])
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def make_sr(source_sop_uid: str = "1.2.3.4.5.6.7.8.1", source_series_uid: str = "1.2.3.4.5.6.7.2") -> Dataset:
    ds = Dataset()
    _patient(ds)
    ds.SOPClassUID = COMPREHENSIVE_SR
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.50.1"
    ds.SeriesInstanceUID = "1.2.3.4.5.6.7.50"
    ds.Modality = "SR"
    ds.SeriesNumber = "50"
    ds.InstanceNumber = "1"
    ds.Manufacturer = "ACME"
    ds.ContentDate = "20240116"
    ds.ContentTime = "090000"
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([code("18748-4", "LN", "Diagnostic Imaging Report")])
    ref = Dataset()
    ref.ReferencedSOPClassUID = CT_STORAGE
    ref.ReferencedSOPInstanceUID = source_sop_uid
    image = content_item("IMAGE", code("121233", "DCM", "Source image for segmentation"))
    image.ReferencedSOPSequence = Sequence([ref])
    items = [
        content_item("TEXT", code("121071", "DCM", "Finding"), TextValue="Nodule 8 mm; patient Garcia informed"),
        content_item("PNAME", code("121008", "DCM", "Person Observer Name"), PersonName="Lopez^Jorge"),
        content_item("DATE", code("111060", "DCM", "Study Date"), Date="20240115"),
        content_item("TEXT", code("121022", "DCM", "Accession Number"), TextValue="ACC998877"),
        image,
    ]
    ds.ContentSequence = Sequence(items)
    evidence_instance = Dataset()
    evidence_instance.ReferencedSOPClassUID = CT_STORAGE
    evidence_instance.ReferencedSOPInstanceUID = source_sop_uid
    evidence_series = Dataset()
    evidence_series.SeriesInstanceUID = source_series_uid
    evidence_series.ReferencedSOPSequence = Sequence([evidence_instance])
    evidence = Dataset()
    evidence.StudyInstanceUID = "1.2.3.4.5.6.7.1"
    evidence.ReferencedSeriesSequence = Sequence([evidence_series])
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([evidence])
    _meta(ds)
    return ds


def make_seg(source_sop_uid: str = "1.2.3.4.5.6.7.8.1", source_series_uid: str = "1.2.3.4.5.6.7.2") -> Dataset:
    ds = Dataset()
    _patient(ds)
    ds.SOPClassUID = SEG_STORAGE
    ds.SOPInstanceUID = "1.2.3.4.5.6.7.60.1"
    ds.SeriesInstanceUID = "1.2.3.4.5.6.7.60"
    ds.FrameOfReferenceUID = "1.2.3.4.5.6.7.3"
    ds.Modality = "SEG"
    ds.Manufacturer = "ACME"
    ds.ManufacturerModelName = "Segmenter"
    ds.DeviceSerialNumber = "SN-1"
    ds.SoftwareVersions = "1.0"
    ds.ContentLabel = "LUNG"
    ds.ContentDescription = "Nodule of Garcia"
    ds.ContentCreatorName = "Lopez^Jorge"
    ds.ContentDate = "20240116"
    ds.ContentTime = "090000"
    ds.SegmentationType = "BINARY"
    segment = Dataset()
    segment.SegmentNumber = 1
    segment.SegmentLabel = "Nodule"
    segment.SegmentAlgorithmType = "MANUAL"
    segment.SegmentedPropertyCategoryCodeSequence = Sequence([code("49755003", "SCT", "Morphologically Altered Structure")])
    segment.SegmentedPropertyTypeCodeSequence = Sequence([code("27925004", "SCT", "Nodule")])
    ds.SegmentSequence = Sequence([segment])
    instance = Dataset()
    instance.ReferencedSOPClassUID = CT_STORAGE
    instance.ReferencedSOPInstanceUID = source_sop_uid
    series = Dataset()
    series.SeriesInstanceUID = source_series_uid
    series.ReferencedInstanceSequence = Sequence([instance])
    ds.ReferencedSeriesSequence = Sequence([series])
    source = Dataset()
    source.ReferencedSOPClassUID = CT_STORAGE
    source.ReferencedSOPInstanceUID = source_sop_uid
    source.PurposeOfReferenceCodeSequence = Sequence([code("121322", "DCM", "Source image for image processing operation")])
    derivation = Dataset()
    derivation.SourceImageSequence = Sequence([source])
    derivation.DerivationCodeSequence = Sequence([code("113076", "DCM", "Segmentation")])
    frame = Dataset()
    frame.DerivationImageSequence = Sequence([derivation])
    seg_id = Dataset()
    seg_id.ReferencedSegmentNumber = 1
    frame.SegmentIdentificationSequence = Sequence([seg_id])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    dim = Dataset()
    dim.DimensionOrganizationUID = "1.2.3.4.5.6.7.61"
    ds.DimensionOrganizationSequence = Sequence([dim])
    ds.NumberOfFrames = 1
    ds.Rows = 4
    ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 1
    ds.BitsStored = 1
    ds.HighBit = 0
    ds.PixelRepresentation = 0
    ds.PixelData = b"\x0f\x00"
    _meta(ds)
    return ds
