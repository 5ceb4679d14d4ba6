"""Settings of the catalogue-sync service (env prefix ``EUCAIM_``)."""

from eucaim_node.catalogue.settings import CollectionsSettings, PublicationSettings, SearchSettings
from eucaim_node.runtime import KafkaSettings, ServiceSettings
from eucaim_node.store import MongoSettings


class CatalogueSyncSettings(ServiceSettings, KafkaSettings, MongoSettings, CollectionsSettings, SearchSettings,
                            PublicationSettings):
    pass
