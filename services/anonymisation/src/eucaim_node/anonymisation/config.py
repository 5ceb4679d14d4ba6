"""Settings of the anonymisation service (env prefix ``EUCAIM_``)."""

from pydantic import Field

from eucaim_node.orthanc import ClinicalOrthancSettings, ResearchOrthancSettings
from eucaim_node.runtime import KafkaSettings, PseudonymKeySettings, ServiceSettings
from eucaim_node.store import MongoSettings


class AnonymisationSettings(
    ServiceSettings, KafkaSettings, MongoSettings, ClinicalOrthancSettings, ResearchOrthancSettings, PseudonymKeySettings
):
    anonymisation_concurrency: int = Field(default=2, ge=1, le=32, description="Instances de-identified at once (CPU-bound: about the core count).")
