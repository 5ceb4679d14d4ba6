"""Action ``C`` on free text: *Clean Descriptors* (PS3.15 E.3.5).

"Any information that is not identifying is retained": the cleaner removes this
instance's identifying values (see :mod:`.identity`) and the patterns that look
like identifiers in any instance (e-mail addresses, telephone numbers, calendar
dates, long digit runs, UIDs), and keeps the rest of the text.
"""

from __future__ import annotations

import re

from .identity import IdentifyingValues

REDACTED = "***"

_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),  # e-mail
    re.compile(r"(?<!\w)\d+(?:\.\d+){3,}(?!\w)"),  # UIDs and dotted identifiers
    re.compile(r"(?<!\w)(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?!\w)"),
    re.compile(r"(?<!\w)(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|1[0-2])[-/.](?:19|20)?\d\d(?!\w)"),
    re.compile(r"(?<!\w)(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\w)"),
    re.compile(r"(?<![\w+])\+?\d[\d ()-]{6,}\d(?!\w)"),  # telephone-like
    re.compile(r"(?<!\w)[A-Za-z]{0,3}\d{6,}(?!\w)"),  # record / accession numbers
)

#: Maximum value lengths (PS3.5 Table 6.2-1) of the text VRs we clean.
_MAX_LENGTH = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "UT": None, "UC": None, "CS": 16, "PN": 64}


def clean_text(value: str, identity: IdentifyingValues, vr: str = "LO") -> str:
    """Return `value` without identifying values or identifier-like patterns, within the
    VR's maximum length (text beyond it, plus a margin for a value cut at the edge, is
    dropped before cleaning)."""
    limit = _MAX_LENGTH.get(vr)
    if limit is not None and len(value) > limit + 256:
        value = value[: limit + 256]
    cleaned = identity.scrub(value, REDACTED)
    for pattern in _PATTERNS:
        cleaned = pattern.sub(REDACTED, cleaned)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[:limit]
    return cleaned
