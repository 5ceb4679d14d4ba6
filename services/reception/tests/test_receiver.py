"""The change-feed follower, against an in-process stand-in for Orthanc's REST answers."""

from eucaim_node.orthanc import Change, ChangesPage, OrthancNotFound
from eucaim_node.reception.core.receiver import StudyReceiver

KEY = b"k" * 32
S1 = "11111111-11111111-11111111-11111111-11111111"
S2 = "22222222-22222222-22222222-22222222-22222222"
SERIES = "33333333-33333333-33333333-33333333-33333333"


class FakeOrthanc:
    def __init__(self):
        self.studies, self.log = {}, []

    def add(self, study_id, uid, last_update, stable=True, instances=3):
        self.studies[study_id] = {"ID": study_id, "LastUpdate": last_update, "IsStable": stable,
                                  "MainDicomTags": {"StudyInstanceUID": uid}, "Series": [SERIES],
                                  "_instances": instances}
        self.log.append(("StableStudy" if stable else "NewStudy", study_id))

    async def changes(self, since, limit=100):
        rows = [Change(seq=i + 1, change_type=t, resource_type="Study", resource_id=r)
                for i, (t, r) in enumerate(self.log) if i + 1 > since][:limit]
        last = rows[-1].seq if rows else max(since, len(self.log)) if self.log else 0
        return ChangesPage(tuple(rows), last, done=len(rows) < limit)

    async def study(self, study_id):
        if study_id not in self.studies:
            raise OrthancNotFound(study_id)
        return self.studies[study_id]

    async def study_ids(self):
        return list(self.studies)

    async def series(self, series_id):
        n = next(iter(self.studies.values()))["_instances"]
        return {"ID": series_id, "Instances": [f"i{n}" for n in range(n)]}


class FakeLedger:
    def __init__(self):
        self.cursor, self.received = None, {}

    async def load_cursor(self):
        return self.cursor

    async def save_cursor(self, seq):
        self.cursor = seq

    async def was_received(self, study_id, last_update):
        return self.received.get(study_id) == last_update

    async def mark_received(self, event):
        self.received[event.orthanc_study_id] = event.orthanc_last_update


def make(orthanc=None):
    orthanc, ledger, published = orthanc or FakeOrthanc(), FakeLedger(), []

    async def publish(event):
        published.append(event)

    return orthanc, ledger, published, StudyReceiver(orthanc, ledger, publish, key=KEY)


async def test_first_start_reconciles_existing_stable_studies_then_follows_the_feed():
    orthanc, ledger, published, receiver = make()
    orthanc.add(S1, "1.2.3.1", "T1")
    await receiver.poll_once()  # no cursor: reconcile
    assert [e.orthanc_study_id for e in published] == [S1]
    assert ledger.cursor == 1
    orthanc.add(S2, "1.2.3.2", "T1")
    await receiver.poll_once()
    assert [e.orthanc_study_id for e in published] == [S1, S2]


async def test_announcement_carries_ids_counts_and_a_keyed_study_key_only():
    orthanc, _, published, receiver = make()
    orthanc.add(S1, "1.2.840.99.1", "T1", instances=4)
    await receiver.poll_once()
    [event] = published
    assert event.study_key.startswith("2.25.") and "1.2.840.99.1" not in event.model_dump_json()
    assert (event.series_count, event.instance_count) == (1, 4)


async def test_same_state_is_announced_once_and_a_new_state_again_as_an_update():
    orthanc, ledger, published, receiver = make()
    ledger.cursor = 0
    orthanc.add(S1, "1.2.3.1", "T1")
    await receiver.poll_once()
    ledger.cursor = 0  # the feed is read again (e.g. a crash before the cursor was saved)
    await receiver.poll_once()
    assert len(published) == 1
    orthanc.add(S1, "1.2.3.1", "T2")  # a late instance made the study stable again
    await receiver.poll_once()
    assert len(published) == 2
    assert published[0].study_key == published[1].study_key
    assert published[0].event_id != published[1].event_id


async def test_republishing_after_lost_bookkeeping_reuses_the_event_id():
    orthanc, ledger, published, receiver = make()
    ledger.cursor = 0
    orthanc.add(S1, "1.2.3.1", "T1")
    await receiver.poll_once()
    ledger.received.clear()
    ledger.cursor = 0
    await receiver.poll_once()
    assert len(published) == 2 and published[0].event_id == published[1].event_id


async def test_a_gap_in_the_feed_triggers_reconciliation():
    orthanc, ledger, published, receiver = make()
    orthanc.add(S1, "1.2.3.1", "T1")
    orthanc.add(S2, "1.2.3.2", "T1")
    ledger.cursor = 0

    async def feed_missing_row_1(since, limit=100):  # Orthanc deleted change 1 (S1) before we read it
        return ChangesPage((Change(2, "StableStudy", "Study", S2),), 2, True)

    ledger.cursor = 0
    orthanc.changes = feed_missing_row_1
    await receiver.poll_once()
    assert [e.orthanc_study_id for e in published] == [S2]  # cursor 0: row 1 is "next", no gap seen
    ledger.cursor = 1
    orthanc.add(S1, "1.2.3.1", "T2")  # S1 changed; its change row (3) is lost too

    async def feed_with_gap(since, limit=100):
        return ChangesPage((Change(4, "NewSeries", "Series", "x"),), 4, True)

    orthanc.changes = feed_with_gap
    await receiver.poll_once()
    assert [e.orthanc_study_id for e in published] == [S2, S1]
    assert ledger.cursor == 4


async def test_unstable_and_deleted_studies_are_not_announced():
    orthanc, ledger, published, receiver = make()
    orthanc.add(S1, "1.2.3.1", "T1", stable=False)
    await receiver.poll_once()
    assert published == []
    assert await receiver.receive(S2) is None
