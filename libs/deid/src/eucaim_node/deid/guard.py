"""The PHI guard: the last line of defence before release.

After de-identification every value at every depth (file meta included) is
checked against the identifying values collected from the *input*
(:mod:`.identity`). A hit blocks release. The reason names the element and the
kind of value that leaked, never the value.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .identity import IdentifyingValues
from .result import QuarantineReason

#: Bulk data that is not text and is checked (if at all) by OCR, not by the guard.
_BULK_KEYWORDS = frozenset({"PixelData", "FloatPixelData", "DoubleFloatPixelData", "WaveformData"})
_BINARY_TEXT_VRS = frozenset({"OB", "UN"})
_NUMERIC_VRS = frozenset({"FL", "FD", "SL", "SS", "UL", "US", "SV", "UV", "AT", "OW", "OF", "OD", "OL", "OV"})
_MAX_BINARY_SCAN = 1 << 20


def check_phi(ds: Dataset, identity: IdentifyingValues) -> list[QuarantineReason]:
    """Reasons for every element of `ds` whose value contains an identifying value."""
    reasons: list[QuarantineReason] = []
    meta = ds.get("file_meta") if hasattr(ds, "file_meta") else None
    if meta is not None:
        reasons.extend(_check(meta, identity, ""))
    reasons.extend(_check(ds, identity, ""))
    return reasons


def _check(ds: Dataset, identity: IdentifyingValues, path: str) -> Iterator[QuarantineReason]:
    for elem in ds:
        name = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        where = f"{path}{name}"
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or ()):
                yield from _check(item, identity, f"{where}[{index}].")
            continue
        for text in _texts(elem):
            hit = identity.find(text)
            if hit:
                kind, source = hit
                yield QuarantineReason(
                    code="phi-guard",
                    message=f"output value contains an {kind} from the input's {source} (value withheld)",
                    tag=f"({elem.tag.group:04X},{elem.tag.element:04X})",
                    keyword=where,
                    rule=f"phi-guard:{source}",
                )
                break


def _texts(elem: DataElement) -> list[str]:
    value = elem.value
    if value is None or elem.VR in _NUMERIC_VRS or elem.keyword in _BULK_KEYWORDS:
        return []
    if isinstance(value, bytes | bytearray):
        if elem.VR not in _BINARY_TEXT_VRS or not value:
            return []
        return [bytes(value[:_MAX_BINARY_SCAN]).decode("latin-1")]
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value if v is not None]
    return [str(value)]
