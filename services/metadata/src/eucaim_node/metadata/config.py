"""Settings of the metadata service (env prefix ``EUCAIM_``)."""

from pydantic import Field

from eucaim_node.catalogue.settings import CollectionsSettings
from eucaim_node.orthanc import ResearchOrthancSettings
from eucaim_node.runtime import KafkaSettings, ServiceSettings
from eucaim_node.store import MongoSettings


class MetadataSettings(ServiceSettings, KafkaSettings, MongoSettings, ResearchOrthancSettings, CollectionsSettings):
    default_collection: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
                                    description="Collection of studies that no collection rule claims.")
