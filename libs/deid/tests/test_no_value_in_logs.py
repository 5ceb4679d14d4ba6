"""Identifying values never reach warnings or logs while the engine runs."""

import logging
import warnings

from eucaim_node.deid import Deidentifier
from pydicom import config
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from .conftest import KEY, SITE, make_ct, to_bytes


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True, True, False)


def test_invalid_values_do_not_echo(caplog) -> None:
    ds = make_ct()
    ds[0x00100030] = _raw(0x00100030, "DA", b"GARCIA1970")  # invalid DA quoting the name
    ds[0x00200011] = _raw(0x00200011, "IS", b"GARCIA")  # invalid IS
    ds[0x00280030] = _raw(0x00280030, "DS", b"GARCIA")  # invalid DS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = to_bytes(ds)  # building the input converts (and complains about) the bad values
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    before = config.settings.reading_validation_mode
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = Deidentifier(KEY, site_prefix=SITE).deidentify(data)
    assert config.settings.reading_validation_mode == before  # restored
    texts = [str(w.message) for w in caught] + [r.getMessage() for r in caplog.records]
    texts += [r.message for r in result.reasons]
    assert not [t for t in texts if "GARCIA" in t.upper()]
