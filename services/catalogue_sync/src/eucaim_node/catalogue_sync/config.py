"""Settings of the catalogue-sync service (env prefix ``EUCAIM_``)."""

from eucaim_node.runtime import KafkaSettings, ServiceSettings
from eucaim_node.store import MongoSettings


class CatalogueSyncSettings(ServiceSettings, KafkaSettings, MongoSettings):
    pass
