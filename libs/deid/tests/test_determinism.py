"""Same input + key → same bytes; another key → unrelated pseudonyms."""

import io

import pydicom
from eucaim_node.deid import Deidentifier, pseudonymise_uid

from .conftest import KEY, OTHER_KEY, SITE, make_ct, to_bytes


def test_same_key_same_bytes() -> None:
    data = to_bytes(make_ct())
    first = Deidentifier(KEY, site_prefix=SITE).deidentify(data)
    second = Deidentifier(KEY, site_prefix=SITE).deidentify(data)
    assert first.data == second.data
    assert first.study_instance_uid == second.study_instance_uid


def test_other_key_unrelated_everything() -> None:
    data = to_bytes(make_ct())
    a = Deidentifier(KEY, site_prefix=SITE).deidentify(data)
    b = Deidentifier(OTHER_KEY, site_prefix=SITE).deidentify(data)
    assert a.patient_pseudonym != b.patient_pseudonym
    assert a.study_instance_uid != b.study_instance_uid
    assert a.sop_instance_uid != b.sop_instance_uid
    da = pydicom.dcmread(io.BytesIO(a.data))
    db = pydicom.dcmread(io.BytesIO(b.data))
    assert da.StudyDate != db.StudyDate or da.PatientID != db.PatientID


def test_same_patient_same_pseudonym_across_studies() -> None:
    engine = Deidentifier(KEY, site_prefix=SITE)
    a = engine.deidentify(to_bytes(make_ct(StudyInstanceUID="1.2.3.100")))
    b = engine.deidentify(to_bytes(make_ct(StudyInstanceUID="1.2.3.200")))
    assert a.patient_pseudonym == b.patient_pseudonym
    assert a.study_instance_uid == pseudonymise_uid("1.2.3.100", KEY)
    assert b.study_instance_uid == pseudonymise_uid("1.2.3.200", KEY)


def test_replay_of_output_is_stable() -> None:
    """De-identifying the same input twice with a fresh engine is idempotent (replays)."""
    data = to_bytes(make_ct())
    outs = {Deidentifier(KEY, site_prefix=SITE).deidentify(data).data for _ in range(3)}
    assert len(outs) == 1


def test_threads_give_identical_results_and_restore_pydicom_settings() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from pydicom import config

    before = (config.settings.reading_validation_mode, config.settings.writing_validation_mode)
    engine = Deidentifier(KEY, site_prefix=SITE)
    inputs = [to_bytes(make_ct(SOPInstanceUID=f"1.2.3.4.5.6.7.8.{i}")) for i in range(12)]
    expected = [engine.deidentify(d).data for d in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda d: engine.deidentify(d).data, inputs))
    assert got == expected
    assert (config.settings.reading_validation_mode, config.settings.writing_validation_mode) == before
