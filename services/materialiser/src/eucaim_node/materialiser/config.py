"""Settings of the materialiser (env prefix ``EUCAIM_``)."""

from pydantic import Field

from eucaim_node.datasets.settings import DatasetRootSettings
from eucaim_node.orthanc import ResearchOrthancSettings
from eucaim_node.runtime import KafkaSettings, ServiceSettings
from eucaim_node.store import MongoSettings


class MaterialiserSettings(ServiceSettings, KafkaSettings, MongoSettings, ResearchOrthancSettings, DatasetRootSettings):
    dataset_download_concurrency: int = Field(
        default=6, ge=1, le=64, description="Requests to the research Orthanc at the same time (a series archive or one instance each).")
    dataset_series_archives: bool = Field(
        default=True, description="Fetch a series of which nothing is on disk yet as one ZIP (/series/{id}/archive; "
                                  "decision 0130). Off: every instance by its own request (say, when a proxy in "
                                  "front of the research Orthanc refuses long answers).")
    dataset_poll_seconds: float = Field(
        default=2.0, gt=0, le=300, description="How often pending or deleted datasets are looked for (a command "
                                               "wakes the worker at once; this is the fallback).")
