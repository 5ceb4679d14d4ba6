"""Temporal values: strict parsing (PS3.5 §6.2, Table 6.2-1) and, for *Retain
Longitudinal Temporal Information with Modified Dates* (PS3.15 E.3.6), shifting:
every DA and DT of one patient moves by the same number of days, times of day
(TM and the time part of DT) are kept, so intervals are preserved.

A value is accepted only if it matches its VR's format completely: no text after
a parsable prefix, no impossible date or time, no legacy ACR-NEMA form
(``YYYY.MM.DD``, ``HH:MM:SS``: PS3.5 6.2 says DICOM does not support them), no
query-only range (``A-B``, PS3.4 C.2.2.2.5). The engine replaces what is not
accepted (see ``engine.Deidentifier._temporal``); nothing here ever passes a
suffix through.
"""

from __future__ import annotations

import datetime as _dt
import re

#: VRs whose values are dates or times.
TEMPORAL_VRS = frozenset({"DA", "DT", "TM"})

# [0-9], not \d: \d matches any Unicode digit.
_DA = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})")
_TM = re.compile(r"([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:\.([0-9]{1,6}))?)?)?")
_DT = re.compile(
    r"([0-9]{4})(?:([0-9]{2})(?:([0-9]{2})"  # YYYY[MM[DD
    r"((?:[0-9]{2})(?:[0-9]{2}(?:[0-9]{2}(?:\.[0-9]{1,6})?)?)?)?)?)?"  # [HH[MM[SS[.F{1,6}]]]]]]
    r"([+-][0-9]{4})?"  # [&ZZXX]
)
_MAX_OFFSET_MINUTES = {"+": 14 * 60, "-": 12 * 60}  # PS3.5 Table 6.2-1 DT note: -1200 to +1400


def _date(year: str, month: str, day: str) -> _dt.date | None:
    """The Gregorian date, or None if there is no such day."""
    try:
        return _dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def _time_ok(hh: str, mm: str | None, ss: str | None) -> bool:
    """HH 00-23, MM 00-59, SS 00-60 (a leap second), PS3.5 Table 6.2-1 TM."""
    return int(hh) <= 23 and (mm is None or int(mm) <= 59) and (ss is None or int(ss) <= 60)


def _offset_ok(offset: str | None) -> bool:
    """&ZZXX with XX 00-59 and the whole offset within -1200..+1400."""
    if offset is None:
        return True
    hours, minutes = int(offset[1:3]), int(offset[3:5])
    return minutes <= 59 and hours * 60 + minutes <= _MAX_OFFSET_MINUTES[offset[0]]


def parse_da(value: str) -> _dt.date | None:
    """The date of a DA value ``YYYYMMDD`` (8 bytes fixed, no padding inside), else None."""
    match = _DA.fullmatch(value)
    return _date(*match.groups()) if match else None


def is_valid_tm(value: str) -> bool:
    """``HH[MM[SS[.F{1,6}]]]`` with trailing SPACE padding allowed (PS3.5 Table 6.2-1 TM)."""
    match = _TM.fullmatch(value.rstrip(" "))
    return bool(match) and _time_ok(*match.groups()[:3])


def _dt_parts(value: str) -> re.Match[str] | None:
    """The match of a complete, valid DT value (trailing SPACE padding allowed), else None."""
    match = _DT.fullmatch(value.rstrip(" "))
    if not match:
        return None
    year, month, day, time, offset = match.groups()
    if month is not None and not 1 <= int(month) <= 12:
        return None
    if day is not None and _date(year, month, day) is None:
        return None
    if time is not None and not _time_ok(time[:2], time[2:4] or None, time[4:6] or None):
        return None
    return match if _offset_ok(offset) else None


def is_valid(vr: str, value: str) -> bool:
    """True if `value` is one complete, valid value of the temporal `vr` (PS3.5 Table 6.2-1)."""
    if vr == "DA":
        return parse_da(value) is not None
    if vr == "TM":
        return is_valid_tm(value)
    return _dt_parts(value) is not None


def shift_da(value: str, days: int) -> str | None:
    """One DA value moved by `days`; None if it is not a valid ``YYYYMMDD`` date."""
    date = parse_da(value)
    return _moved(date, days) if date else None


def shift_dt(value: str, days: int) -> str | None:
    """The date part of one DT value moved by `days`, time and UTC offset kept.

    None if the value is not valid, or holds less than a full date (``YYYY`` or
    ``YYYYMM`` cannot move by days without moving by up to a year).
    """
    match = _dt_parts(value)
    if match is None or match[3] is None:
        return None
    date = _moved(_date(match[1], match[2], match[3]), days)
    return date + (match[4] or "") + (match[5] or "") if date else None


def _moved(date: _dt.date, days: int) -> str | None:
    """``YYYYMMDD`` of `date` moved by `days`; None before year 1 (nothing to write)."""
    try:
        moved = date + _dt.timedelta(days=days)
    except OverflowError:
        return None
    return f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"


def shift_values(values: list[str], vr: str, days: int) -> list[str] | None:
    """Every value of a DA or DT element shifted; None if any one cannot be."""
    shift = shift_da if vr == "DA" else shift_dt
    shifted = [shift(v, days) for v in values]
    return None if None in shifted else shifted  # type: ignore[return-value]
