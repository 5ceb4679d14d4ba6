"""The PHI boundary's orchestration: only released instances reach the research archive."""

from eucaim_node.anonymisation.core.anonymiser import StudyAnonymiser
from eucaim_node.deid import DeidResult
from eucaim_node.deid.result import QuarantineReason
from eucaim_node.events import StudyReceived
from eucaim_node.orthanc import OrthancNotFound, StoredInstance

STUDY_KEY = "2.25.99"
CLIN = "aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaaaaaa-aaaaaaaa"
RES = "bbbbbbbb-bbbbbbbb-bbbbbbbb-bbbbbbbb-bbbbbbbb"


def iid(n: int) -> str:
    return f"{n:08x}-" + "-".join(["cccccccc"] * 4)


def received() -> StudyReceived:
    return StudyReceived.create(cause="c", producer="reception", study_key=STUDY_KEY, orthanc_study_id=CLIN,
                                orthanc_last_update="T", series=(), series_count=1, instance_count=4)


class Clinical:
    def __init__(self, files):
        self.files = files

    async def study_instance_ids(self, study_id):
        return list(self.files)

    async def instance_file(self, instance_id):
        if self.files[instance_id] is None:
            raise OrthancNotFound(instance_id)
        return self.files[instance_id]


class Research:
    def __init__(self):
        self.stored = []

    async def store(self, data):
        self.stored.append(data)
        return StoredInstance(f"r{len(self.stored)}", RES, "series-" + data.decode()[-1], "Success")


def deidentify(data: bytes) -> DeidResult:
    if data.startswith(b"bad"):
        return DeidResult(released=False, reasons=(QuarantineReason("phi-guard", "identifying value found", keyword="SeriesDescription"),))
    uid = "2.25.1" if data.startswith(b"other") else STUDY_KEY
    return DeidResult(released=True, data=b"deid-" + data, study_instance_uid=uid, patient_pseudonym="EUCAIM-LOCAL-p1")


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


def make(files):
    research, log, pubs = Research(), Log(), Pubs()
    return StudyAnonymiser(Clinical(files), research, deidentify, log, pubs), research, log, pubs


async def test_released_instances_are_stored_and_quarantined_ones_never_are():
    anonymiser, research, log, pubs = make({iid(1): b"ok-1", iid(2): b"ok-2", iid(3): b"bad-3", iid(4): None})
    await anonymiser.anonymise(received())
    assert sorted(research.stored) == [b"deid-ok-1", b"deid-ok-2"]
    assert [e.orthanc_instance_id for e in log.entries] == [iid(3)]
    anonymised, quarantined = pubs.events
    assert (anonymised.instance_count, anonymised.quarantined_count, anonymised.series_count) == (2, 1, 2)
    assert anonymised.research_study_id == RES and anonymised.subject_key == "EUCAIM-LOCAL-p1"
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
