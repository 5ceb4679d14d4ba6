"""Per-patient date shifting (PS3.15 E.3.6, Modified Dates)."""

import datetime as dt

from eucaim_node.deid.dates import shift_da, shift_dt
from eucaim_node.deid.pseudonyms import date_shift_days
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import KEY, OTHER_KEY, make_ct
from .helpers import released


def _days(a: str, b: str) -> int:
    parse = lambda s: dt.date(int(s[:4]), int(s[4:6]), int(s[6:8]))  # noqa: E731
    return (parse(b) - parse(a)).days


def test_shift_is_never_zero_and_per_patient() -> None:
    shifts = {date_shift_days(f"P{i}", KEY) for i in range(500)}
    assert 0 not in shifts
    assert all(-3652 <= s <= -1 for s in shifts)
    assert len(shifts) > 300
    assert date_shift_days("P1", KEY) != date_shift_days("P1", OTHER_KEY)


def test_shift_formats() -> None:
    assert shift_da("20240301", -1) == "20240229"
    assert shift_dt("20240301120000.5+0100", -1) == "20240229120000.5+0100"
    assert shift_dt("20240301 ", -1) == "20240229"  # trailing SPACE padding (PS3.5 6.2)
    # not shiftable: None, never a partial or "--" result
    assert shift_da("20240101-20240131", -1) is None  # a range is query-only (PS3.4 C.2.2.2.5)
    assert shift_da("garbage", -5) is None
    assert shift_dt("2024", -1) is None
    assert shift_da("00010101", -5) is None  # would fall before year 1


@settings(max_examples=60, deadline=None)
@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)), st.integers(-3652, -1))
def test_shift_moves_by_exactly_offset(date: dt.date, days: int) -> None:
    text = date.strftime("%Y%m%d")
    assert _days(text, shift_da(text, days)) == days


def test_intervals_between_studies_preserved() -> None:
    first = released(make_ct(StudyDate="20240115", StudyInstanceUID="1.2.3.9.1"))
    second = released(make_ct(StudyDate="20240410", StudyInstanceUID="1.2.3.9.2", SeriesDate="20240410"))
    assert _days(first.StudyDate, second.StudyDate) == _days("20240115", "20240410")
    assert first.StudyDate != "20240115"


def test_other_patient_gets_other_shift() -> None:
    a = released(make_ct(PatientID="A-1"))
    b = released(make_ct(PatientID="B-2"))
    assert a.StudyDate != b.StudyDate


def test_nested_and_unlisted_dates_shifted() -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    item = Dataset()
    item.Date = "20240115"
    ds = make_ct()
    ds.add_new(0x0040A730, "SQ", Sequence([item]))
    ds.add_new(0x00181200, "DA", "20240110")  # Date of Last Calibration
    out = released(ds)
    shifted = out.StudyDate
    assert out[0x0040A730][0].Date == shifted
    assert _days(out[0x00181200].value, shifted) == 5
