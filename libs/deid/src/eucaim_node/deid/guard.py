"""The PHI guard: the last line of defence before release.

After de-identification every value at every depth (file meta included) is
checked against the identifying values collected from the *input*
(:mod:`.identity`). A hit blocks release. The reason names the element and the
kind of value that leaked, never the value.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from .identity import IdentifyingValues
from .result import QuarantineReason
from .values import OPAQUE_VRS, TEXT_VRS, iter_elements, opaque_text, tag_text, text_values

#: Bulk data that is not text and is checked (if at all) by OCR, not by the guard.
_BULK_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009, 0x54001010})
#: Written by the engine from constants (methods.py): nothing of the input can be in them.
_ENGINE_TAGS = frozenset({0x00120062, 0x00120063, 0x00120064, 0x00280303})
_MAX_BINARY_SCAN = 1 << 20
_SEPARATOR = "\x1f"  # a non-word, non-UID character between values

#: (path of the element, tag, one text value)
_Value = tuple[str, int, str]


def check_phi(ds: Dataset, identity: IdentifyingValues) -> list[QuarantineReason]:
    """Reasons for every element of `ds` whose value contains an identifying value."""
    found: list[_Value] = []
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _gather(meta, "", ["iso8859"], found)
    _gather(ds, "", None, found)
    if not found or identity.find(_SEPARATOR.join(v for _, _, v in found)) is None:
        return []  # one search over everything; elements are only examined on a hit
    reasons: list[QuarantineReason] = []
    flagged: set[str] = set()
    for path, tag, text in found:
        if path in flagged:
            continue
        hit = identity.find(text)
        if hit:
            kind, source = hit
            flagged.add(path)
            reasons.append(
                QuarantineReason(
                    code="phi-guard",
                    message=f"output value contains an {kind} from the input's {source} (value withheld)",
                    tag=tag_text(tag),
                    keyword=path,
                    rule=f"phi-guard:{source}",
                )
            )
    return reasons


def _gather(ds: Dataset, path: str, inherited: list[str] | None, out: list[_Value]) -> None:
    for where, tag, vr, elem, encodings in iter_elements(ds, path, inherited, _ENGINE_TAGS):
        if vr in TEXT_VRS:
            for text in text_values(elem, encodings):
                out.append((where, tag, text))
        elif vr in OPAQUE_VRS and tag not in _BULK_TAGS:
            text = opaque_text(elem, _MAX_BINARY_SCAN)
            if text:
                out.append((where, tag, text))
