"""The node's one adapter over Orthanc's REST API (orthanc-api-client: async, called off the event loop, or synchronous).

Only the REST API that Orthanc 1.10 (Debian) and 1.12 (container images) share is used: no
labels, no extended ``/changes``, no ``/tools/find`` paging options.
"""

from .client import (
    Change,
    ChangesPage,
    OrthancAnswerTooLarge,
    OrthancClient,
    OrthancNotFound,
    OrthancSession,
    OrthancUnavailable,
    StoredInstance,
)
from .settings import ClinicalOrthancSettings, OrthancEndpoint, ResearchOrthancSettings

__all__ = [
    "Change",
    "ChangesPage",
    "ClinicalOrthancSettings",
    "OrthancAnswerTooLarge",
    "OrthancClient",
    "OrthancEndpoint",
    "OrthancNotFound",
    "OrthancSession",
    "OrthancUnavailable",
    "ResearchOrthancSettings",
    "StoredInstance",
]
