"""Dummy values for action ``D`` (PS3.15 E.1: "replace with a non-zero length
value that may be a dummy value and consistent with the VR")."""

from __future__ import annotations

DUMMY_TEXT = "ANONYMIZED"
DUMMY_PERSON = "ANONYMOUS"

_DUMMIES: dict[str, object] = {
    "AE": "ANONYMOUS",
    "AS": "000D",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": DUMMY_TEXT,
    "LT": DUMMY_TEXT,
    "PN": DUMMY_PERSON,
    "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT,
    "TM": "000000",
    "UC": DUMMY_TEXT,
    "UR": "http://anonymized.invalid",
    "UT": DUMMY_TEXT,
    "FL": 0.0,
    "FD": 0.0,
    "SL": 0,
    "SS": 0,
    "SV": 0,
    "UL": 0,
    "US": 0,
    "UV": 0,
    "AT": 0,
    "OB": b"\x00\x00",
    "OD": b"\x00" * 8,
    "OF": b"\x00" * 4,
    "OL": b"\x00" * 4,
    "OV": b"\x00" * 8,
    "OW": b"\x00\x00",
    "UN": b"\x00\x00",
}


def dummy_for(vr: str) -> object:
    """The dummy value for `vr` (``US or SS``-style ambiguous VRs use the first)."""
    return _DUMMIES.get(vr.split(" or ")[0], b"\x00\x00" if vr.startswith("O") else DUMMY_TEXT)
