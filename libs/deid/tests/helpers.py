"""Helpers shared by the engine tests."""

from __future__ import annotations

import io

import pydicom
from eucaim_node.deid import EUCAIM_DEFAULT, Deidentifier, Profile
from eucaim_node.deid.result import DeidResult
from pydicom.dataset import Dataset

from .conftest import KEY, SITE, to_bytes


def run(ds: Dataset, profile: Profile = EUCAIM_DEFAULT, key: bytes = KEY) -> DeidResult:
    return Deidentifier(key, site_prefix=SITE, profile=profile).deidentify(to_bytes(ds))


def released(ds: Dataset, profile: Profile = EUCAIM_DEFAULT, key: bytes = KEY) -> Dataset:
    result = run(ds, profile, key)
    assert result.released, result.reasons
    return pydicom.dcmread(io.BytesIO(result.data))
