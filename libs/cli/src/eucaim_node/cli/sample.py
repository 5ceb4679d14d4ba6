"""A synthetic, identifiable CT study: the sample pushed by ``make up`` and the end-to-end tests.

Nothing real: names, IDs and images are made up, but they sit where real identifiers sit
(PS3.15 Table E.1-1 attributes, a descriptor quoting the patient's name, a private element),
so the node's de-identification is exercised on every run. Images are small (64×64, 16-bit)
so a study of 20 instances is generated and sent in about a second.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

#: Root of the sample's UIDs (the UUID-derived 2.25 arc, so they are globally unique and obviously synthetic).
_UID_ROOT = "2.25."


def _uid(*parts: object) -> str:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()[:15]
    return _UID_ROOT + str(int.from_bytes(digest, "big"))


@dataclass(frozen=True)
class SamplePatient:
    name: str = "DOE^JANE^MARIE"
    patient_id: str = "HOSP-0042-7781"
    birth_date: str = "19630412"
    sex: str = "F"
    age: str = "061Y"
    address: str = "12 Rue des Lilas, 69003 Lyon"
    telephone: str = "+33472112233"
    accession_number: str = "ACC-2024-99817"
    institution: str = "Hopital Saint-Exemple"
    referring_physician: str = "HOUSE^GREGORY"

    def identifying_values(self) -> tuple[str, ...]:
        """Values that must never appear in anything leaving the clinical side."""
        parts = tuple(p for p in self.name.split("^") if len(p) > 2)
        return (self.name, *parts, self.patient_id, self.birth_date, self.address, self.telephone,
                self.accession_number, self.referring_physician)


@dataclass(frozen=True)
class SampleStudy:
    patient: SamplePatient
    study_instance_uid: str
    series_instance_uids: tuple[str, ...]
    sop_instance_uids: tuple[str, ...]
    files: tuple[Path, ...] = field(repr=False)

    @property
    def original_uids(self) -> tuple[str, ...]:
        return (self.study_instance_uid, *self.series_instance_uids, *self.sop_instance_uids)


def _ct_slice(patient: SamplePatient, study_uid: str, series_uid: str, series_number: int,
              instance_number: int, frame_of_reference: str, study_date: str, seed: str, *, modality: str = "CT",
              body_part: str = "CHEST", manufacturer: str = "ACME Medical",
              study_description: str | None = None, size: int = 64) -> Dataset:
    sop_uid = _uid(seed, "sop", series_number, instance_number)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = study_date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = "101500"
    ds.AccessionNumber = patient.accession_number
    ds.Modality = modality
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = "Scanner 3000"
    ds.DeviceSerialNumber = "SN-55501"
    ds.InstitutionName = patient.institution
    ds.InstitutionAddress = "1 Place de l'Hopital, 69003 Lyon"
    ds.ReferringPhysicianName = patient.referring_physician
    ds.StationName = "CT-ROOM-2"
    # A descriptor that quotes the patient: Clean Descriptors must scrub the name and keep the rest.
    ds.StudyDescription = (study_description if study_description is not None
                           else f"LOW DOSE CHEST CT screening {patient.name.split('^')[0]}")
    ds.SeriesDescription = "AXIAL 1.0 LUNG" if series_number == 1 else "AXIAL 3.0 MEDIASTINUM"
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.PatientAge = patient.age
    ds.PatientAddress = patient.address
    ds.PatientTelephoneNumbers = patient.telephone
    ds.BodyPartExamined = body_part
    ds.SliceThickness = "1.0" if series_number == 1 else "3.0"
    ds.KVP = "120"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [-160.0, -160.0, float(instance_number) * float(ds.SliceThickness)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.SliceLocation = float(instance_number) * float(ds.SliceThickness)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.PixelSpacing = [320.0 / size] * 2
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "-600"
    ds.WindowWidth = "1500"
    ds.BurnedInAnnotation = "NO"
    rng = np.random.default_rng(int(hashlib.sha256(sop_uid.encode()).hexdigest()[:8], 16))
    ds.PixelData = rng.integers(0, 4096, size=(size, size), dtype=np.uint16).tobytes()
    # A private element holding the patient's name, as vendors do: must be removed.
    block = ds.private_block(0x0029, "ACME SITE INFO", create=True)
    block.add_new(0x10, "LO", patient.name)
    return ds


def write_sample_study(dest: Path, *, patient: SamplePatient | None = None, series: int = 2,
                       instances_per_series: int = 10, seed: str = "eucaim-node-sample",
                       study_date: str = "20240315", modality: str = "CT", body_part: str = "CHEST",
                       manufacturer: str = "ACME Medical", study_description: str | None = None,
                       size: int = 64) -> SampleStudy:
    """Write one CT study as Part-10 files under ``dest``; same arguments, same UIDs and bytes.

    ``modality``, ``body_part``, ``manufacturer`` and ``study_description`` vary what the catalogue
    sees (the images stay CT Image Storage); the default description quotes the patient's name.
    ``size`` is the rows and columns of each slice (512 for a clinical-size CT, as the pipeline benchmark sends).
    """
    patient = patient or SamplePatient()
    dest.mkdir(parents=True, exist_ok=True)
    study_uid = _uid(seed, "study")
    frame_of_reference = _uid(seed, "for")
    series_uids, sop_uids, files = [], [], []
    for s in range(1, series + 1):
        series_uid = _uid(seed, "series", s)
        series_uids.append(series_uid)
        for i in range(1, instances_per_series + 1):
            ds = _ct_slice(patient, study_uid, series_uid, s, i, frame_of_reference, study_date, seed,
                           modality=modality, body_part=body_part, manufacturer=manufacturer,
                           study_description=study_description, size=size)
            path = dest / f"s{s:02d}_i{i:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            sop_uids.append(ds.SOPInstanceUID)
            files.append(path)
    return SampleStudy(patient, study_uid, tuple(series_uids), tuple(sop_uids), tuple(files))
