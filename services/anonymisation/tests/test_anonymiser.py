"""The PHI boundary's orchestration: only released instances reach the research archive."""

import os

import pytest

from eucaim_node.anonymisation.adapters.deid_pool import DeidentifierPool
from eucaim_node.anonymisation.core.anonymiser import StudyAnonymiser
from eucaim_node.anonymisation.core.instance import deidentify_instance
from eucaim_node.deid import EUCAIM_DEFAULT, DeidResult
from eucaim_node.deid.result import QuarantineReason
from eucaim_node.events import StudyReceived
from eucaim_node.orthanc import OrthancNotFound, OrthancUnavailable, StoredInstance

STUDY_KEY = "2.25.99"
CLIN = "aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaaaaaa"
RES = "bbbbbbbb-bbbbbbbb-bbbbbbbb-bbbbbbbb-bbbbbbbb"
SUBJECT = "EUCAIM-LOCAL-" + "a1" * 10
OTHER_SUBJECT = "EUCAIM-LOCAL-" + "b2" * 10


def iid(n: int) -> str:
    return f"{n:08x}-" + "-".join(["cccccccc"] * 4)


def received() -> StudyReceived:
    return StudyReceived.create(cause="c", producer="reception", study_key=STUDY_KEY, orthanc_study_id=CLIN,
                                orthanc_last_update="T", series=(), series_count=1, instance_count=4)


class Clinical:
    def __init__(self, files, unavailable=False):
        self.files = files
        self.unavailable = unavailable

    async def study_instance_ids(self, study_id):
        return list(self.files)

    def instance_file(self, instance_id):  # synchronous: called where the instance is de-identified
        if self.unavailable:
            raise OrthancUnavailable("clinical: HTTP 503")
        if self.files[instance_id] is None:
            raise OrthancNotFound(instance_id)
        return self.files[instance_id]

    async def calling_aet(self, instance_id):
        return "CT_ROOM_2"

    async def department(self, instance_id):
        return "Breast screening / programme"


class Research:
    def __init__(self):
        self.stored = []
        self.stored_by_the_port = []
        self.deleted = []

    def store_from_the_port(self, data):  # synchronous: as the worker stores
        self.stored_by_the_port.append(data)
        return self.store_now(data)

    def store_now(self, data):
        self.stored.append(data)
        return StoredInstance(f"r{len(self.stored)}", RES, "series-" + data.decode()[-1], "Success")

    async def store(self, data):
        return self.store_now(data)

    async def delete_study(self, study_id):
        self.deleted.append(study_id)
        self.stored = []

    async def subject_study_ids(self, subject_key):
        return [RES] if self.stored and subject_key == SUBJECT else []

    async def study_key(self, study_id):
        return STUDY_KEY


class Withdrawals:
    def __init__(self, withdrawn=(), withdraw_while_storing=False):
        self.withdrawn = set(withdrawn)
        self.calls = 0
        self.withdraw_while_storing = withdraw_while_storing

    async def record(self, subject_key, event_id):
        self.withdrawn.add(subject_key)

    async def is_withdrawn(self, subject_key):
        self.calls += 1
        if self.withdraw_while_storing and self.calls > 1:
            self.withdrawn.add(subject_key)
        return subject_key in self.withdrawn


def deidentify(data: bytes) -> DeidResult:
    if data.startswith(b"bad"):
        return DeidResult(released=False, reasons=(QuarantineReason("phi-guard", "identifying value found", keyword="SeriesDescription"),))
    uid = "2.25.1" if data.startswith(b"other") else STUDY_KEY
    subject = OTHER_SUBJECT if data.startswith(b"second-subject") else SUBJECT
    return DeidResult(released=True, data=b"deid-" + data, study_instance_uid=uid, patient_pseudonym=subject)


class InProcess:
    """The port ``DeidentifyInstance`` without worker processes: the same decision (``deidentify_instance``),
    recording the cleared subject each instance was sent with."""

    def __init__(self, clinical, research, engine=deidentify):
        self.clinical, self.research, self.engine = clinical, research, engine
        self.sent_with = {}

    async def __call__(self, instance_id, *, study_key, cleared_subject):
        self.sent_with[instance_id] = cleared_subject
        return deidentify_instance(instance_id, study_key=study_key, cleared_subject=cleared_subject,
                                   fetch=self.clinical.instance_file, deidentify=self.engine,
                                   store=self.research.store_from_the_port)


class Log:
    def __init__(self):
        self.entries = []

    async def record(self, study_key, instance, event_id):
        self.entries.append(instance)


class Pubs:
    def __init__(self):
        self.events = []

    async def anonymised(self, event):
        self.events.append(event)

    async def quarantined(self, event):
        self.events.append(event)

    async def withheld(self, event):
        self.events.append(event)

    async def withdrawn(self, event):
        self.events.append(event)


def make(files, withdrawals=None, *, engine=deidentify, clinical=None):
    research, log, pubs = Research(), Log(), Pubs()
    clinical = clinical or Clinical(files)
    anonymiser = StudyAnonymiser(clinical, research, InProcess(clinical, research, engine), log, pubs,
                                 withdrawals=withdrawals or Withdrawals())
    return anonymiser, research, log, pubs


async def test_released_instances_are_stored_and_quarantined_ones_never_are():
    anonymiser, research, log, pubs = make({iid(1): b"ok-1", iid(2): b"ok-2", iid(3): b"bad-3", iid(4): None})
    await anonymiser.anonymise(received())
    assert sorted(research.stored) == [b"deid-ok-1", b"deid-ok-2"]
    assert [e.orthanc_instance_id for e in log.entries] == [iid(3)]
    anonymised, quarantined = pubs.events
    assert (anonymised.instance_count, anonymised.quarantined_count, anonymised.series_count) == (2, 1, 2)
    assert anonymised.research_study_id == RES and anonymised.subject_key == SUBJECT
    assert quarantined.quarantined_count == 1
    assert quarantined.instances[0].reason == "phi-guard" and quarantined.instances[0].element == "SeriesDescription"


async def test_fully_quarantined_study_publishes_only_the_quarantine():
    anonymiser, research, _, pubs = make({iid(1): b"bad-1"})
    await anonymiser.anonymise(received())
    assert research.stored == [] and [e.event_type for e in pubs.events] == ["StudyQuarantined"]


async def test_instance_whose_study_uid_disagrees_with_the_study_key_is_held_back():
    anonymiser, research, log, _ = make({iid(1): b"other-1", iid(2): b"ok-2"})
    await anonymiser.anonymise(received())
    assert research.stored == [b"deid-ok-2"]
    assert log.entries[0].reason == "study-key-mismatch"


async def test_processing_the_same_event_twice_publishes_identical_events():
    anonymiser, _, _, pubs = make({iid(1): b"ok-1", iid(2): b"bad-2"})
    await anonymiser.anonymise(received())
    await anonymiser.anonymise(received())
    first, second = pubs.events[:2], pubs.events[2:]
    assert [e.event_id for e in first] == [e.event_id for e in second]


def withdrawal():
    from eucaim_node.events import WithdrawalRequested

    return WithdrawalRequested.create(cause="cli:withdraw:EUCAIM-LOCAL-p1", producer="cli",
                                      subject_key="EUCAIM-LOCAL-" + "ab" * 10)


async def test_the_calling_ae_title_rides_along_for_the_collection_rules():
    anonymiser, _, _, pubs = make({iid(1): b"ok-1"})
    await anonymiser.anonymise(received())
    assert pubs.events[0].calling_aet == "CT_ROOM_2"
    assert pubs.events[0].department == "BREAST SCREENING PROGRAMME"  # normalised as the screening rules compare


async def test_a_withdrawn_subject_is_never_released():
    anonymiser, research, _, pubs = make({iid(1): b"ok-1", iid(2): b"ok-2"}, Withdrawals({SUBJECT}))
    await anonymiser.anonymise(received())
    assert research.stored == [] and research.deleted == []
    assert [e.event_type for e in pubs.events] == ["StudyWithheld"]
    assert pubs.events[0].subject_key == SUBJECT


async def test_a_withdrawal_recorded_while_storing_removes_what_was_stored():
    anonymiser, research, _, pubs = make({iid(1): b"ok-1"}, Withdrawals(withdraw_while_storing=True))
    await anonymiser.anonymise(received())
    assert research.deleted == [RES] and research.stored == []
    assert [e.event_type for e in pubs.events] == ["StudyWithheld"]


async def test_withdrawal_deletes_the_subjects_research_studies_and_announces_each_once():
    from eucaim_node.events import WithdrawalRequested

    withdrawals = Withdrawals()
    anonymiser, research, _, pubs = make({iid(1): b"ok-1"}, withdrawals)
    await anonymiser.anonymise(received())
    event = WithdrawalRequested.create(cause="cli:withdraw", producer="cli", subject_key=SUBJECT)
    await anonymiser.withdraw(event)
    await anonymiser.withdraw(event)  # redelivered: nothing left, nothing announced again
    assert SUBJECT in withdrawals.withdrawn
    assert research.deleted == [RES]
    withdrawn = [e for e in pubs.events if e.event_type == "StudyWithdrawn"]
    assert len(withdrawn) == 1 and withdrawn[0].study_key == STUDY_KEY and withdrawn[0].causation_id == event.event_id


async def test_replaced_temporal_values_are_logged_by_code_only(caplog):
    replaced = (QuarantineReason("malformed-temporal", "DA value is not a complete, valid DA", keyword="StudyDate"),)

    def with_replacement(data: bytes) -> DeidResult:
        return DeidResult(released=True, data=b"deid-" + data, study_instance_uid=STUDY_KEY,
                          patient_pseudonym=SUBJECT, replaced=replaced)

    anonymiser, research, _, _ = make({iid(1): b"ok-1"}, engine=with_replacement)
    with caplog.at_level("INFO", logger="eucaim_node.anonymisation"):
        await anonymiser.anonymise(received())
    assert research.stored == [b"deid-ok-1"]
    (line,) = [r for r in caplog.records if r.getMessage().startswith("values replaced")]
    assert line.codes == "malformed-temporal"


async def test_the_first_instance_clears_its_subject_and_the_others_are_stored_where_they_are_deidentified():
    """Decision 0132: the subject is checked once, on the first instance (stored by this path); the others are
    sent with it as the cleared subject and stored by the port."""
    files = {iid(n): f"ok-{n}".encode() for n in range(1, 6)}
    anonymiser, research, _, pubs = make(files)
    await anonymiser.anonymise(received())
    assert anonymiser._deidentify.sent_with == {iid(1): None, **{iid(n): SUBJECT for n in range(2, 6)}}
    assert sorted(research.stored_by_the_port) == [f"deid-ok-{n}".encode() for n in range(2, 6)]
    assert sorted(research.stored) == [f"deid-ok-{n}".encode() for n in range(1, 6)]
    assert pubs.events[0].instance_count == 5


async def test_a_withdrawn_second_subject_is_never_stored_though_sent_with_the_first_as_cleared():
    """A study of two subjects: the second subject's instances are sent with the first's as the cleared subject;
    they must come back as bytes, be checked, and (withdrawn) never reach the research archive."""
    files = {iid(1): b"ok-1", iid(2): b"second-subject-2", iid(3): b"ok-3", iid(4): b"second-subject-4"}
    anonymiser, research, _, pubs = make(files, Withdrawals({OTHER_SUBJECT}))
    await anonymiser.anonymise(received())
    assert anonymiser._deidentify.sent_with[iid(2)] == SUBJECT
    assert sorted(research.stored) == [b"deid-ok-1", b"deid-ok-3"]
    withheld = [e for e in pubs.events if e.event_type == "StudyWithheld"]
    assert [e.subject_key for e in withheld] == [OTHER_SUBJECT]


async def test_a_second_subject_not_withdrawn_is_checked_then_stored_by_the_studys_path():
    files = {iid(1): b"ok-1", iid(2): b"second-subject-2"}
    withdrawals = Withdrawals()
    anonymiser, research, _, _ = make(files, withdrawals)
    await anonymiser.anonymise(received())
    assert sorted(research.stored) == [b"deid-ok-1", b"deid-second-subject-2"]
    assert research.stored_by_the_port == []  # neither subject was cleared when its instance was sent
    assert withdrawals.calls == 4  # each subject before storing it, and each again after


async def test_a_deleted_first_instance_leaves_the_next_to_clear_the_subject():
    files = {iid(1): None, iid(2): b"ok-2", iid(3): b"bad-3"}
    anonymiser, research, log, pubs = make(files)
    await anonymiser.anonymise(received())
    assert anonymiser._deidentify.sent_with[iid(2)] is None
    assert research.stored == [b"deid-ok-2"] and [e.orthanc_instance_id for e in log.entries] == [iid(3)]
    assert pubs.events[0].instance_count == 1


async def test_an_unavailable_clinical_orthanc_fails_the_message_and_publishes_nothing():
    """OrthancUnavailable is a ConnectionError: the delivery layer retries the message, then dead-letters it."""
    clinical = Clinical({iid(1): b"ok-1", iid(2): b"ok-2"}, unavailable=True)
    anonymiser, research, _, pubs = make(None, clinical=clinical)
    with pytest.raises(OrthancUnavailable):
        await anonymiser.anonymise(received())
    assert research.stored == [] and pubs.events == []


# The port in production: worker processes that reach the two Orthancs themselves (stand-ins, conftest.py).

def _ct_with_study_uid(study_uid: str, patient_id: str = "HOSP-1") -> bytes:
    """A minimal CT instance (the real engine's input) whose StudyInstanceUID is `study_uid`."""
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, "1.2.3.4.5.6.7.8.1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, "1.2.3.4.5.6.7.2"
    ds.PatientID, ds.Modality = patient_id, "CT"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = CTImageStorage, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


KEY = bytes(range(32))


def _pool(orthancs, workers=1):
    clinical, research = orthancs
    return DeidentifierPool(KEY, site_prefix="ES01", profile=EUCAIM_DEFAULT, clinical=clinical.endpoint(),
                            research=research.endpoint(), workers=workers)


@pytest.fixture(scope="module")
def pool(orthancs):
    pool = _pool(orthancs)
    yield pool
    pool.close()


@pytest.fixture
def stand_ins(orthancs):
    for orthanc in orthancs:
        orthanc.files.clear()
        orthanc.stored.clear()
        orthanc.unavailable = False
    return orthancs


async def test_the_worker_pool_releases_exactly_what_the_engine_releases_in_process(stand_ins):
    """Decisions 0090 and 0132: de-identification in worker processes must not change one byte of the result, and
    a worker stores only an instance of the cleared subject, handing back bytes otherwise; each worker is started
    (and its engine built) before the first study, not during it."""
    from eucaim_node.deid import Deidentifier

    clinical, research = stand_ins
    clinical.files.update({iid(n): _ct_with_study_uid(f"1.2.826.0.1.3680043.8.498.{n}") for n in range(1, 5)})
    engine = Deidentifier(KEY, site_prefix="ES01")
    expected = {i: engine.deidentify(data) for i, data in clinical.files.items()}
    pool = _pool(stand_ins, workers=2)
    try:
        pids = await pool.start()
        pending = {i: await pool(i, study_key=e.study_instance_uid, cleared_subject=None) for i, e in expected.items()}
        assert research.stored == []  # no cleared subject: nothing stored where it was de-identified
        stored = {i: await pool(i, study_key=e.study_instance_uid, cleared_subject=e.patient_pseudonym)
                  for i, e in expected.items()}
    finally:
        pool.close()
    assert len(pids) == 2 and os.getpid() not in pids
    assert [o.data for o in pending.values()] == [e.data for e in expected.values()]
    assert all(o.stored is None for o in pending.values())
    assert research.stored == [e.data for e in expected.values()]
    assert all(o.data is None and o.stored is not None for o in stored.values())  # only the outcome came back
    assert [(o.released, o.study_instance_uid, o.patient_pseudonym) for o in stored.values()] == \
        [(e.released, e.study_instance_uid, e.patient_pseudonym) for e in expected.values()]


async def test_a_worker_stores_nothing_of_another_subject_or_study(pool, stand_ins):
    clinical, research = stand_ins
    clinical.files[iid(1)] = _ct_with_study_uid("1.2.826.0.1.3680043.8.498.9", patient_id="HOSP-2")
    first = await pool(iid(1), study_key="2.25.1", cleared_subject=None)
    other_subject = await pool(iid(1), study_key=first.study_instance_uid, cleared_subject=SUBJECT)
    other_study = await pool(iid(1), study_key="2.25.1", cleared_subject=first.patient_pseudonym)
    assert research.stored == []
    assert other_subject.stored is None and other_subject.data is not None
    assert other_study.stored is None and other_study.data is None  # quarantined by the caller: no bytes


async def test_an_invalid_kept_uid_is_quarantined_never_stored_in_the_research_orthanc(pool, stand_ins):
    """Issue 9 item 1, service side: the service de-identifies with the engine (main.py wires it through
    ``DeidentifierPool``, in worker processes), which keeps UIDs under the DICOM root verbatim and so must
    quarantine one that is not a valid UID (PS3.5 9.1) instead of releasing it."""
    from eucaim_node.deid.engine import quiet_pydicom

    clinical, research_orthanc = stand_ins
    with quiet_pydicom():
        clinical.files[iid(1)] = _ct_with_study_uid("1.2.840.10008.9/../../x")
    research, log, pubs = Research(), Log(), Pubs()
    anonymiser = StudyAnonymiser(Clinical({iid(1): None}), research, pool, log, pubs, withdrawals=Withdrawals())
    await anonymiser.anonymise(received())
    assert research.stored == [] and research_orthanc.stored == []
    assert [(e.reason, e.element) for e in log.entries] == [("invalid-uid", "StudyInstanceUID")]
    assert "/.." not in log.entries[0].detail
    assert [e.event_type for e in pubs.events] == ["StudyQuarantined"]


async def test_a_deleted_instance_has_no_outcome_and_a_refusing_orthanc_raises_in_the_caller(pool, stand_ins):
    """404 from the clinical Orthanc: deleted meanwhile, nothing to release. 503, or credentials refused: the
    error crosses the process boundary as OrthancUnavailable, so the message is retried (then dead-lettered)."""
    clinical, research = stand_ins
    assert await pool(iid(7), study_key=STUDY_KEY, cleared_subject=SUBJECT) is None
    clinical.files[iid(1)] = _ct_with_study_uid("1.2.826.0.1.3680043.8.498.5")
    clinical.unavailable = True
    with pytest.raises(OrthancUnavailable):
        await pool(iid(1), study_key=STUDY_KEY, cleared_subject=None)
    clinical.unavailable = False
    first = await pool(iid(1), study_key=STUDY_KEY, cleared_subject=None)
    research.password = "rotated"  # the worker still sends the old one
    try:
        with pytest.raises(OrthancUnavailable, match="credentials refused"):
            await pool(iid(1), study_key=first.study_instance_uid, cleared_subject=first.patient_pseudonym)
    finally:
        research.password = "research-secret-pw"
    assert research.stored == []


def test_the_orthanc_passwords_are_in_no_repr(orthancs):
    from eucaim_node.orthanc import OrthancClient, OrthancSession

    pool = _pool(orthancs)
    try:
        shown = [repr(pool), repr(OrthancSession(orthancs[0].endpoint())), repr(OrthancClient(orthancs[1].endpoint())),
                 repr(orthancs[0].endpoint())]
    finally:
        pool.close()
    assert not any("secret-pw" in text for text in shown)


async def test_a_killed_worker_fails_its_instance_and_the_pool_comes_back(stand_ins):
    """A worker killed mid-work (out of memory, say) breaks a ProcessPoolExecutor for good; the pool must start
    anew so that the next messages are de-identified (the failed one is retried by the delivery layer)."""
    import signal
    from concurrent.futures.process import BrokenProcessPool

    clinical, _ = stand_ins
    clinical.files[iid(1)] = _ct_with_study_uid("1.2.826.0.1.3680043.8.498.77")
    pool = _pool(stand_ins)
    try:
        (pid,) = await pool.start()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool):
            await pool(iid(1), study_key=STUDY_KEY, cleared_subject=None)
        assert (await pool(iid(1), study_key=STUDY_KEY, cleared_subject=None)).released
    finally:
        pool.close()


SERIES_A, SERIES_B = "a0000000-" + "-".join(["aaaaaaaa"] * 4), "b0000000-" + "-".join(["bbbbbbbb"] * 4)


async def test_the_anonymised_event_counts_judged_and_incomplete_pixel_data_of_every_fully_judged_series():
    """Data ``<series><n>-<judgement>``: series A fully judged (one incomplete), series B has an instance the
    engine did not judge, so it is left to the research Orthanc; the quarantined instance counts nowhere."""
    judgement = {b"yes": True, b"no": False, b"none": None}

    def judging(data: bytes) -> DeidResult:
        if data.startswith(b"bad"):
            return deidentify(data)
        return DeidResult(released=True, data=data, study_instance_uid=STUDY_KEY, patient_pseudonym=SUBJECT,
                          native_pixels_complete=judgement[data.split(b"-")[1]])

    class SeriesResearch(Research):
        def store_now(self, data):
            self.stored.append(data)
            return StoredInstance(f"r{len(self.stored)}", RES, SERIES_A if data.startswith(b"a") else SERIES_B,
                                  "Success")

    research, pubs = SeriesResearch(), Pubs()
    files = {iid(1): b"a1-yes", iid(2): b"a2-no", iid(3): b"a3-yes", iid(4): b"b1-yes", iid(5): b"b2-none",
             iid(6): b"bad-a4"}
    clinical = Clinical(files)
    port = InProcess(clinical, research, judging)  # the first instance stored by the study's path, the rest by the port
    await StudyAnonymiser(clinical, research, port, Log(), pubs, withdrawals=Withdrawals()).anonymise(received())
    assert research.stored_by_the_port and len(research.stored) > len(research.stored_by_the_port)
    anonymised = pubs.events[0]
    assert [(c.research_series_id, c.images_judged, c.incomplete) for c in anonymised.native_pixels] == [(SERIES_A, 3, 1)]


async def test_an_engine_that_judges_nothing_leaves_the_event_without_pixel_judgements():
    anonymiser, _, _, pubs = make({iid(1): b"ok-1", iid(2): b"ok-2"})
    await anonymiser.anonymise(received())
    assert pubs.events[0].native_pixels == ()
