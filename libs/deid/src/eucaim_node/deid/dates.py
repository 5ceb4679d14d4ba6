"""Date handling for *Retain Longitudinal Temporal Information with Modified Dates*
(PS3.15 E.3.6): every DA and DT of one patient moves by the same number of days,
times of day (TM and the time part of DT) are kept, so intervals are preserved."""

from __future__ import annotations

import datetime as _dt
import re

_DA = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DT = re.compile(r"^(\d{4})(\d{2})(\d{2})(.*)$")


def shift_da(value: str, days: int) -> str:
    """Shift one DA value (``YYYYMMDD``, or a ``A-B`` range) by `days`.

    Returns ``""`` for a value that is not a valid date: it cannot be shifted,
    so it is emptied rather than kept.
    """
    text = value.strip()
    if not text:
        return ""
    if "-" in text:
        return "-".join(shift_da(part, days) if part else "" for part in text.split("-", 1))
    match = _DA.match(text)
    return _shifted_date(match, days) if match else ""


def shift_dt(value: str, days: int) -> str:
    """Shift the date part of one DT value by `days`, keeping time and UTC offset.

    A DT with less than a full date (``YYYY`` or ``YYYYMM``) cannot be shifted
    by days without moving it by up to a year; it is emptied.
    """
    text = value.strip()
    if not text:
        return ""
    match = _DT.match(text)
    date = _shifted_date(match, days) if match else ""
    return date + match[4] if date else ""


def _shifted_date(match: re.Match[str], days: int) -> str:
    """``YYYYMMDD`` from the first three groups of `match`, moved by `days`; ``""`` if not a real date."""
    try:
        date = _dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return ""
    return _format_date(date + _dt.timedelta(days=days))


def _format_date(date: _dt.date) -> str:
    return f"{date.year:04d}{date.month:02d}{date.day:02d}"


def shift_values(values: list[str], vr: str, days: int) -> list[str]:
    """Shift every value of a DA or DT element."""
    shift = shift_da if vr == "DA" else shift_dt
    return [shift(v, days) for v in values]
