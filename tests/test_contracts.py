"""Checks over the code base as a whole: delivery guarantees and generated documents."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from faststream import AckPolicy

from eucaim_node.anonymisation.main import router as anonymisation
from eucaim_node.audit.main import router as audit
from eucaim_node.catalogue_sync.main import router as catalogue_sync
from eucaim_node.metadata.main import router as metadata

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("router", [anonymisation, metadata, catalogue_sync, audit], ids=["anonymisation", "metadata", "catalogue-sync", "audit"])
def test_every_subscriber_commits_after_success_in_a_named_group(router):
    for subscriber in router.subscribers:
        assert subscriber.ack_policy is AckPolicy.NACK_ON_ERROR
        assert subscriber.group_id


def test_asyncapi_document_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "asyncapi.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_openapi_document_is_current():
    """docs/openapi.json is the federation API's published contract: `make openapi` after changing a route."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "openapi.py"), "--check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_published_anonymised_event_carries_pixel_judgements_as_an_optional_field():
    """Consumers of older events (and redeliveries) must still validate: the field may be absent; it carries only
    counts keyed by research (pseudonymous) series IDs (decision 0131)."""
    schemas = json.loads((ROOT / "docs" / "asyncapi.json").read_text())["components"]["schemas"]
    anonymised = schemas["StudyAnonymised"]
    assert "native_pixels" in anonymised["properties"] and "native_pixels" not in anonymised["required"]
    check = schemas["SeriesPixelCheck"]
    assert set(check["properties"]) == {"research_series_id", "images_judged", "incomplete"}
    assert check["additionalProperties"] is False
