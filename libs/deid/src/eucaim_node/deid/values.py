"""Reading element values without converting every element.

pydicom parses element headers eagerly and values lazily (``RawDataElement``).
Converting an element costs time, and writing a converted element back costs
more than copying its raw bytes. The engine therefore leaves untouched elements
raw and reads text values straight from their bytes (PS3.5 6.1: decoded with the
dataset's Specific Character Set; PS3.5 6.2: backslash separates values).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from pydicom import datadict
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

#: VRs whose values are text (PS3.5 Table 6.2-1).
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
#: Text VRs whose characters may come from the Specific Character Set.
CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
#: Text VRs that hold a single value (a backslash is a character, not a separator).
SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
#: Binary VRs whose bytes may still hide text (unknown or opaque values).
OPAQUE_VRS = frozenset({"OB", "UN"})

Element = DataElement | RawDataElement


@lru_cache(maxsize=8192)
def dictionary_vr(tag: int) -> str:
    """The VR the data dictionary gives `tag` (``UN`` if unknown)."""
    try:
        return datadict.dictionary_VR(tag)
    except KeyError:
        return "UN"


def vr_of(elem: Element) -> str:
    """The element's VR; implicit-VR raw elements, and raw UN elements of known tags,
    take the dictionary's (as pydicom does on conversion)."""
    vr = elem.VR
    if not vr or (vr == "UN" and elem.is_raw):
        known = dictionary_vr(int(elem.tag))
        return known if known != "UN" or not vr else vr
    return vr


@lru_cache(maxsize=8192)
def keyword_of(tag: int) -> str:
    """The keyword of `tag`, or ``(gggg,eeee)`` for tags the dictionary lacks."""
    return datadict.keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def tag_text(tag: int) -> str:
    """``(gggg,eeee)``."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def encodings_of(ds: Dataset, inherited: list[str] | None = None) -> list[str]:
    """Python codecs for `ds`: its own Specific Character Set, else the parent's."""
    if 0x00080005 in ds:
        return convert_encodings(ds.get("SpecificCharacterSet") or None)
    if inherited is not None:
        return inherited
    original = getattr(ds, "original_character_set", None) or "iso8859"
    return [original] if isinstance(original, str) else list(original)


def text_values(elem: Element, encodings: list[str]) -> list[str]:
    """The element's text values (empty for non-text VRs and empty elements)."""
    vr = vr_of(elem)
    if elem.is_raw:
        raw = elem.value
        if not raw or vr not in TEXT_VRS:
            return []
        if vr in CHARSET_VRS:
            text = decode_bytes(bytes(raw), encodings, set())
        else:
            text = bytes(raw).decode("latin-1")
        text = text.rstrip(" \x00")
        if not text:
            return []
        return [text] if vr in SINGLE_VALUED else text.split("\\")
    value = elem.value
    if value is None or value == "" or vr not in TEXT_VRS:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def opaque_text(elem: Element, limit: int) -> str:
    """The first `limit` bytes of an OB/UN value, as latin-1 text (for the guard)."""
    value = elem.value
    if not isinstance(value, bytes | bytearray) or not value:
        return ""
    return bytes(value[:limit]).decode("latin-1")


def first_text(ds: Dataset, tag: int, encodings: list[str] | None = None) -> str:
    """The first value of a text element, stripped, without converting it ("" if absent)."""
    elem = ds.get_item(tag)
    if elem is None:
        return ""
    values = text_values(elem, encodings or ["iso8859"])
    return values[0].strip() if values else ""


def first_int(ds: Dataset, tag: int) -> int | None:
    """The first value of a US/UL/IS element, without converting a raw US/UL element."""
    elem = ds.get_item(tag)
    if elem is None:
        return None
    if elem.is_raw and vr_of(elem) in ("US", "UL") and elem.value:
        size = 2 if vr_of(elem) == "US" else 4
        return int.from_bytes(elem.value[:size], "little" if elem.is_little_endian else "big")
    try:
        value = ds[tag].value
        return int(value[0] if isinstance(value, MultiValue | list) else value)
    except (TypeError, ValueError, IndexError):
        return None


def iter_elements(
    ds: Dataset, path: str = "", inherited: list[str] | None = None, skip: frozenset[int] = frozenset()
) -> Iterator[tuple[str, int, str, Element, list[str]]]:
    """(path, tag, VR, element, encodings) of every non-sequence element at every depth of
    `ds`, items first-to-last; `path` names the element (``ContentSequence[2].TextValue``).
    Tags in `skip` are not visited (nor, for sequences, their items)."""
    encodings = encodings_of(ds, inherited)
    for elem in ds.elements():
        tag = int(elem.tag)
        if tag in skip:
            continue
        vr = vr_of(elem)
        if vr == "SQ":
            where = path + keyword_of(tag)
            for index, item in enumerate(ds[tag].value or ()):
                yield from iter_elements(item, f"{where}[{index}].", encodings, skip)
        else:
            yield path + keyword_of(tag), tag, vr, elem, encodings
