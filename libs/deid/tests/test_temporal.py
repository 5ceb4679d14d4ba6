"""Temporal values (issue 9, item 6): nothing the engine cannot parse completely passes through.

Strict PS3.5 §6.2 parsing; a value that fails gets its row's Basic Profile action (X, Z or D;
Z outside the table) and a reason code in ``DeidResult.replaced``, never the value.
"""

from __future__ import annotations

import io
import string

import pydicom
import pytest
from eucaim_node.deid import BASIC, Deidentifier, Option
from eucaim_node.deid.dates import is_valid, parse_da
from eucaim_node.deid.dummies import dummy_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .conftest import KEY, SITE, make_ct, to_bytes

pytestmark = pytest.mark.usefixtures("quiet")

ENGINE = Deidentifier(KEY, site_prefix=SITE)
FULL_DATES = Deidentifier(KEY, site_prefix=SITE, profile=BASIC.with_options(Option.RETAIN_LONGITUDINAL_FULL_DATES))

HOSTILE = ["20200115^Watson^Emma", "2020-13-45", "20201345", "2020011", "1230xyz"]


def _run(engine: Deidentifier, ds: Dataset):
    result = engine.deidentify(to_bytes(ds))
    assert result.released, result.reasons
    return result, pydicom.dcmread(io.BytesIO(result.data))


@pytest.mark.parametrize(
    ("vr", "value", "ok"),
    [
        ("DA", "20200115", True), ("DA", "20200230", False), ("DA", "2020011", False), ("DA", "2020.01.15", False),
        ("DA", "20201345", False), ("DA", "2020-13-45", False), ("DA", "20200115^Watson^Emma", False),
        ("DA", "２０２００１１５", False),  # Unicode digits are not "0"-"9"
        ("TM", "07", True), ("TM", "0709", True), ("TM", "070907.0705", True), ("TM", "235960", True),
        ("TM", "1230 ", True), ("TM", "021", False), ("TM", "1230xyz", False), ("TM", "2400", False),
        ("TM", "07:09:07", False), ("TM", "070907.", False), ("TM", "070907.1234567", False), ("TM", " 0709", False),
        ("DT", "2020", True), ("DT", "202001", True), ("DT", "20200115123000.123456+0100", True),
        ("DT", "20200115-1200", True), ("DT", "20200115+1500", False), ("DT", "20200115+0160", False),
        ("DT", "202013", False), ("DT", "20200115^Watson^Emma", False), ("DT", "2020011512300", False),
        ("DT", "20200115 12", False),
    ],
)
def test_strict_parsing(vr: str, value: str, ok: bool) -> None:
    assert is_valid(vr, value) is ok


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_dates_are_replaced_never_passed_through(value: str) -> None:
    """StudyDate (DA, C under Modified Dates, Basic Z), AcquisitionDateTime (DT, X/D), StudyTime
    (TM, C), a DT in a sequence and a DA outside the table, each with the same hostile text."""
    item = Dataset()
    item.DateTime = value  # (0040,A120) in a content sequence, Basic D
    ds = make_ct(StudyDate=value, AcquisitionDateTime=value, StudyTime=value)
    ds.add_new(0x0040A730, "SQ", Sequence([item]))
    ds.add_new(0x00189074, "DT", value)  # Frame Acquisition DateTime
    ds.add_new(0x00181202, "DT", value)  # DateTimeOfLastCalibration
    ds.add_new(0x00141020, "DA", value)  # Expiry Date: not in Table E.1-1
    result, out = _run(ENGINE, ds)
    assert out.get("StudyDate", "") == ""  # Basic Z
    assert out.get("StudyTime", "") == ""
    assert out[0x0040A730][0].DateTime == dummy_for("DT")  # Basic D
    assert 0x00141020 in out and out[0x00141020].value in ("", None)  # outside the table: Z
    assert b"Watson" not in result.data and b"xyz" not in result.data
    temporal = [e for e in out.iterall() if e.VR in ("DA", "DT", "TM") and e.value not in ("", None)]
    assert all(is_valid(e.VR, str(v)) for e in temporal for v in str(e.value).split("\\"))  # never "--"
    codes = {(r.code, r.keyword) for r in result.replaced}
    assert ("malformed-temporal", "StudyDate") in codes
    assert ("malformed-temporal", "ContentSequence.DateTime") in codes
    assert all(value not in r.message for r in result.replaced)


def test_kept_dates_are_checked_too() -> None:
    """Full Dates keeps dates (K), TM is kept under C: each kept value must still parse."""
    ds = make_ct(StudyDate="20200115^Watson^Emma", StudyTime="1230xyz", SeriesDate="20200115")
    result, out = _run(FULL_DATES, ds)
    assert out.get("StudyDate", "") == "" and out.get("StudyTime", "") == ""
    assert out.SeriesDate == "20200115"
    assert len(result.replaced) == 2


def test_one_bad_value_of_several_replaces_the_element() -> None:
    ds = make_ct()
    ds.add_new(0x00141020, "DA", ["20200115", "20200115^Watson"])
    result, out = _run(ENGINE, ds)
    assert out[0x00141020].value in ("", None)
    assert [r.code for r in result.replaced] == ["malformed-temporal"]


def test_valid_multi_valued_dates_are_all_shifted() -> None:
    ds = make_ct(StudyDate="20240115")
    ds.add_new(0x00141020, "DA", ["20240115", "20240116"])
    result, out = _run(ENGINE, ds)
    first, second = out[0x00141020].value
    assert first == out.StudyDate and parse_da(second) is not None and second != "20240116"
    assert result.replaced == ()


def test_partial_dt_cannot_be_shifted_and_is_replaced() -> None:
    result, out = _run(ENGINE, make_ct(AcquisitionDateTime="2024"))
    assert [r.code for r in result.replaced] == ["unshiftable-date"]
    assert out.get("AcquisitionDateTime") is None or out.AcquisitionDateTime in ("", dummy_for("DT"))


PLACES = [("StudyDate", 0x00080020, "DA"), ("AcquisitionDateTime", 0x0008002A, "DT"),
          ("StudyTime", 0x00080030, "TM"), ("ExpiryDate", 0x00141020, "DA"),
          ("TimeOfGainCalibration", 0x00143077, "TM"), ("ExpirationDateTime", 0x00080416, "DT")]

_TEXT = st.text(alphabet=string.printable.replace("\r", "").replace("\x0b", "").replace("\x0c", ""), max_size=30)
_VALID_PREFIX = st.sampled_from(["", "20200115", "2020011512", "123000", "20200115123000.5+0100"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(PLACES), prefix=_VALID_PREFIX, suffix=_TEXT,
       engine=st.sampled_from([ENGINE, FULL_DATES]))
def test_any_text_in_a_temporal_attribute_leaves_empty_or_fully_parsable(place, prefix, suffix, engine) -> None:
    """Property: the output value is absent, empty or a complete valid value of the VR, and a
    value that did not parse completely leaves nothing of itself (only X, Z or the VR's dummy)."""
    _, tag, vr = place
    value = prefix + suffix
    ds = make_ct()
    ds.add_new(tag, vr, value)
    result = engine.deidentify(to_bytes(ds))
    assert result.released, result.reasons
    out = pydicom.dcmread(io.BytesIO(result.data))
    written = "" if tag not in out else str(out[tag].value or "")
    values = [v for v in written.split("\\") if v] if written else []
    assert all(is_valid(vr, v) for v in values)
    original = [v for v in value.rstrip(" \x00").split("\\")]
    if value.strip(" \x00") and not all(is_valid(vr, v) for v in original):
        assert written in ("", str(dummy_for(vr)))
        leftover = set(suffix) - set(string.digits + "+-. \\")
        assert not leftover & set(written)


@pytest.mark.parametrize("vr", ["DA", "DT", "TM"])
def test_a_kept_safe_private_element_with_a_temporal_vr_is_checked_too(vr: str) -> None:
    """Retain Safe Private keeps listed private elements, but the VR is whatever the file says: a
    listed tag written as DA/DT/TM is a temporal value like any other (strict, else replaced)."""
    from eucaim_node.deid import EUCAIM_DEFAULT

    engine = Deidentifier(KEY, site_prefix=SITE, profile=EUCAIM_DEFAULT.with_options(Option.RETAIN_SAFE_PRIVATE))
    ds = make_ct()
    ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019100C, vr, "20200115^Watson^Emma")  # B value's tag, on the safe-list
    result, out = _run(engine, ds)
    assert b"Watson" not in result.data
    assert out[0x0019100C].value in ("", None)
    assert [r.code for r in result.replaced] == ["malformed-temporal"]


def test_a_kept_safe_private_date_is_shifted_under_modified_dates() -> None:
    """Under Retain Longitudinal Modified Dates no real date is released, private or not."""
    from eucaim_node.deid import EUCAIM_DEFAULT

    profile = EUCAIM_DEFAULT.with_options(Option.RETAIN_SAFE_PRIVATE)
    assert profile.has(Option.RETAIN_LONGITUDINAL_MODIFIED_DATES)
    engine = Deidentifier(KEY, site_prefix=SITE, profile=profile)
    ds = make_ct(StudyDate="20200115")
    ds.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    ds.add_new(0x0019100C, "DA", "20200115")
    _, out = _run(engine, ds)
    assert out[0x0019100C].value == out.StudyDate != "20200115"
