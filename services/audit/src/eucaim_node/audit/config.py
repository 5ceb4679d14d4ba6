"""Settings of the audit service (env prefix ``EUCAIM_``)."""

from eucaim_node.runtime import KafkaSettings, ServiceSettings
from eucaim_node.store import MongoSettings


class AuditSettings(ServiceSettings, KafkaSettings, MongoSettings):
    pass
