"""Settings of the reception service (env prefix ``EUCAIM_``)."""

from pydantic import Field

from eucaim_node.orthanc import ClinicalOrthancSettings
from eucaim_node.runtime import KafkaSettings, ServiceSettings
from eucaim_node.settings import PseudonymKeySettings
from eucaim_node.store import MongoSettings


class ReceptionSettings(ServiceSettings, KafkaSettings, MongoSettings, ClinicalOrthancSettings, PseudonymKeySettings):
    reception_poll_interval_seconds: float = Field(default=1.0, gt=0, le=60, description="Wait between polls of /changes once caught up.")
    reception_changes_page_size: int = Field(default=100, ge=1, le=1000)
