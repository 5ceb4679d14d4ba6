"""Collection assignment by rules, and withdrawal, with in-process stand-ins for Orthanc and MongoDB."""

from eucaim_node.catalogue.config import bundled_config_path, load_config
from eucaim_node.catalogue.documents import RemovedStudy, StudyDocument
from eucaim_node.events import SeriesPixelCheck, StudyAnonymised, WithdrawalRequested
from eucaim_node.metadata.core.indexer import StudyIndexer

SUBJECT = "EUCAIM-LOCAL-" + "c3" * 10
RES = "bbbbbbbb-bbbbbbbb-bbbbbbbb-bbbbbbbb-bbbbbbbb"


class Research:
    def __init__(self, modality="CT", body_part="CHEST", description="LOW DOSE CHEST CT"):
        self.study_json = {"Series": ["s1"], "MainDicomTags": {"StudyDescription": description},
                           "PatientMainDicomTags": {"PatientID": SUBJECT}}
        self.series_json = {"MainDicomTags": {"SeriesInstanceUID": "2.25.9", "Modality": modality,
                                              "BodyPartExamined": body_part}, "Instances": ["i1", "i2"]}

    async def study(self, study_id):
        return self.study_json

    async def series(self, series_id):
        return self.series_json

    async def instance_tags(self, instance_id):
        return {"PatientSex": "M", "PatientAge": "063Y", "Manufacturer": "Philips"}

    undecodable = frozenset()
    instances_tags = {"i1": {"Rows": "8", "Columns": "8", "InstanceNumber": "1"},
                      "i2": {"Rows": "8", "Columns": "8", "InstanceNumber": "3"}}

    async def series_instances_tags(self, series_id):
        return self.instances_tags

    async def decodes(self, instance_id):
        return instance_id not in self.undecodable


class Catalogue:
    """The writer port in memory: stores each document in its stored form, as the MongoDB adapter does."""

    def __init__(self, withdrawn=(), withdraw_during_write=False):
        self.studies, self.series, self.tombstones = {}, {}, {}
        self.withdrawn = set(withdrawn)
        self.withdraw_during_write = withdraw_during_write
        self.subject_refreshes = 0

    async def replace_study(self, study, series):
        self.studies[study.key] = study.to_document()
        for s in series:
            self.series[s.key] = s.to_document()
        if self.withdraw_during_write:
            self.withdrawn.add(study.subject_key)

    async def refresh_subject(self, subject_key, changed_study=None):
        self.subject_refreshes += 1

    async def record_withdrawal(self, subject_key, at, event_id):
        self.withdrawn.add(subject_key)

    async def is_withdrawn(self, subject_key):
        return subject_key in self.withdrawn

    async def studies_of(self, subject_key):
        return [StudyDocument.from_document(s) for s in self.studies.values() if s["subject_key"] == subject_key]

    async def remove_study(self, study, at):
        self.tombstones[study.key] = RemovedStudy(key=study.key, collection_id=study.collection_id,
                                                  subject_key=study.subject_key, removed_at=at)
        self.studies.pop(study.key, None)

    async def removed_studies_of(self, subject_key):
        return [t for t in self.tombstones.values() if t.subject_key == subject_key]


class Published(list):
    async def __call__(self, event):
        self.append(event)


def anonymised(study_key="2.25.5", aet=None):
    return StudyAnonymised.create(cause="c" + study_key, producer="anonymisation", study_key=study_key, research_study_id=RES,
                                  subject_key=SUBJECT, series_count=1, instance_count=2, quarantined_count=0,
                                  calling_aet=aet)


def make(research=None, catalogue=None):
    config = load_config(bundled_config_path("collections.example.yaml"))
    indexed, removed = Published(), Published()
    catalogue = catalogue or Catalogue()
    indexer = StudyIndexer(research or Research(), catalogue, indexed, default_collection="default", config=config,
                           publish_removed=removed)
    return indexer, catalogue, indexed, removed


async def test_rules_choose_the_collection_and_its_condition():
    indexer, catalogue, indexed, _ = make()
    await indexer.index(anonymised())
    study = catalogue.studies["2.25.5"]
    assert study["collection_id"] == "lung-screening" and study["condition_code"] == "SNOMEDCT363358000"
    assert indexed[0].collection_id == "lung-screening"
    assert study["manufacturer_codes"] == ["birnlex_3065"] and catalogue.subject_refreshes == 1


async def test_an_unmatched_study_goes_to_the_default_collection():
    indexer, catalogue, _, _ = make(Research(modality="US", body_part="KIDNEY", description="RENAL"))
    await indexer.index(anonymised())
    assert catalogue.studies["2.25.5"]["collection_id"] == "default"


async def test_a_withdrawn_subjects_study_is_not_catalogued():
    indexer, catalogue, indexed, _ = make(catalogue=Catalogue(withdrawn={SUBJECT}))
    await indexer.index(anonymised())
    assert catalogue.studies == {} and indexed == []


async def test_a_withdrawal_recorded_during_the_write_removes_the_study():
    indexer, catalogue, indexed, removed = make(catalogue=Catalogue(withdraw_during_write=True))
    await indexer.index(anonymised())
    assert catalogue.studies == {} and indexed == []
    assert [e.study_key for e in removed] == ["2.25.5"]


async def test_withdrawal_removes_every_study_and_announces_each_again_on_redelivery():
    indexer, catalogue, _, removed = make()
    await indexer.index(anonymised("2.25.5"))
    await indexer.index(anonymised("2.25.6"))
    event = WithdrawalRequested.create(cause="w", producer="cli", subject_key=SUBJECT)
    await indexer.withdraw(event)
    assert catalogue.studies == {} and set(catalogue.tombstones) == {"2.25.5", "2.25.6"}
    first = sorted(e.event_id for e in removed)
    await indexer.withdraw(event)
    assert sorted(e.event_id for e in removed[2:]) == first  # same IDs: the audit deduplicates
    assert {e.collection_id for e in removed} == {"lung-screening"}


async def test_series_and_study_carry_their_data_quality():
    research = Research()
    research.undecodable = frozenset({"i2"})
    indexer, catalogue, _, _ = make(research)
    await indexer.index(anonymised())
    series = catalogue.series["2.25.9"]["quality"]
    assert series["missing_instance_numbers"] == 1 and series["undecodable"] == 1
    assert set(series["flags"]) == {"missing_slices", "undecodable_pixels", "missing_minimum_tags"}
    study = catalogue.studies["2.25.5"]["quality"]
    assert study["series_checked"] == 1 and study["flagged"]["undecodable_pixels"] == 1
    assert study["tag_present"]["Manufacturer"] == 0 and "missing_slices" in study["flags"]


class CountingResearch(Research):
    """Records which instances the indexer asked the research Orthanc to decode."""

    def __init__(self):
        super().__init__()
        self.study_json["Series"] = [SERIES]
        self.asked = []

    async def decodes(self, instance_id):
        self.asked.append(instance_id)
        return await super().decodes(instance_id)


SERIES = "dddddddd-dddddddd-dddddddd-dddddddd-dddddddd"


def judged(images, incomplete):
    return anonymised().model_copy(update={"native_pixels": (
        SeriesPixelCheck(research_series_id=SERIES, images_judged=images, incomplete=incomplete),)})


async def quality_of(research, event):
    indexer, catalogue, _, _ = make(research)
    await indexer.index(event)
    return catalogue.series["2.25.9"]["quality"]


async def test_pixel_data_judged_by_anonymisation_for_every_listed_image_are_not_decoded_again():
    research = CountingResearch()
    research.undecodable = frozenset({"i2"})
    from_orthanc = await quality_of(research, anonymised())
    assert research.asked == ["i1", "i2"]
    research.asked.clear()
    assert await quality_of(research, judged(2, 1)) == from_orthanc  # the same document, no decode asked
    assert research.asked == []


async def test_a_judgement_of_another_number_of_images_is_not_trusted():
    """An older event, a series changed since, instances of other syntaxes: Orthanc decodes, as before."""
    research = CountingResearch()
    quality = await quality_of(research, judged(1, 1))
    assert research.asked == ["i1", "i2"] and quality["undecodable"] == 0
    research.asked.clear()
    other_series = anonymised().model_copy(update={"native_pixels": (SeriesPixelCheck(
        research_series_id=RES, images_judged=2, incomplete=2),)})
    assert (await quality_of(research, other_series))["undecodable"] == 0 and research.asked == ["i1", "i2"]
