"""Whether native (uncompressed) pixel data are as long as the image attributes say (pure: a dataset in).

PS3.5 §8.1.1 and PS3.3 C.7.6.3: native Pixel Data (7FE0,0010) hold Rows × Columns × SamplesPerPixel ×
BitsAllocated / 8 bytes per frame, times NumberOfFrames (0028,0008; absent means one frame); with
BitsAllocated 1 the bits are packed, so the byte count is that many *bits* rounded up to whole bytes; the
value is padded to an even length (PS3.5 §7.1.1). Compressed (encapsulated) pixel data have no such rule:
their length says nothing about whether they decode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pydicom.uid

from .values import first_int, first_text

if TYPE_CHECKING:
    from pydicom import Dataset

PIXEL_DATA = 0x7FE00010
#: Native transfer syntaxes (PS3.5 §10, A.1, A.2, A.3): pixel data stored as plain bytes, not deflated.
NATIVE_SYNTAXES = frozenset({pydicom.uid.ImplicitVRLittleEndian, pydicom.uid.ExplicitVRLittleEndian,
                             pydicom.uid.ExplicitVRBigEndian})
#: Images whose judgement agrees with the research Orthanc's decoder (Orthanc's DicomImageInformation
#: ExtractPixelFormat and DicomIntegerPixelAccessor: a supported format whose pixel data are shorter than every
#: frame is refused): (PhotometricInterpretation, SamplesPerPixel, BitsAllocated). Anything else — palette
#: colour, YBR, 1-bit, 32-bit, planar colour — is not judged and stays Orthanc's to decode.
JUDGED_FORMATS = frozenset({("MONOCHROME1", 1, 8), ("MONOCHROME2", 1, 8), ("MONOCHROME1", 1, 16),
                            ("MONOCHROME2", 1, 16), ("RGB", 3, 8)})


def native_pixel_data_length(rows: int, columns: int, samples_per_pixel: int, bits_allocated: int,
                             frames: int = 1) -> int:
    """Bytes the native pixel data of these image attributes need, before the even-length padding (PS3.5 §8.1.1,
    PS3.3 C.7.6.3): bits of every sample of every pixel of every frame, rounded up to whole bytes (BitsAllocated 1
    packs eight pixels in a byte)."""
    return (rows * columns * samples_per_pixel * bits_allocated * frames + 7) // 8


def _judged_format(ds: Dataset) -> tuple[int, int, int, int] | None:
    """(rows, columns, samples, bits allocated) of an image in :data:`JUDGED_FORMATS` with the stored bits Orthanc
    decodes the same way (8-bit: 8 bits stored, unsigned; 16-bit: 1 to 16 bits stored, HighBit their top bit; colour
    interleaved), else None."""
    rows, columns = first_int(ds, 0x00280010), first_int(ds, 0x00280011)
    samples, allocated = first_int(ds, 0x00280002), first_int(ds, 0x00280100)
    stored, high_bit = first_int(ds, 0x00280101), first_int(ds, 0x00280102)
    signed = first_int(ds, 0x00280103)
    photometric = first_text(ds, 0x00280004).upper()
    if None in (rows, columns, samples, allocated, stored, high_bit, signed) or not rows or not columns:
        return None
    if (photometric, samples, allocated) not in JUDGED_FORMATS or signed not in (0, 1) or high_bit != stored - 1:
        return None
    if allocated == 8 and (stored != 8 or signed):
        return None
    if allocated == 16 and not 1 <= stored <= 16:
        return None
    if samples == 3 and (first_int(ds, 0x00280006) or 0) != 0:  # planar colour
        return None
    return rows, columns, samples, allocated


def native_pixels_complete(ds: Dataset) -> bool | None:
    """Whether the dataset's native pixel data hold every frame its image attributes describe.

    True: long enough. False: shorter than every frame needs, or absent, while Rows, Columns and the other
    image attributes say there is an image (the research Orthanc refuses to decode such an instance). None: not
    judged — no transfer syntax or not a native one (:data:`NATIVE_SYNTAXES`: compressed data decode or not by
    their content), no image attributes, pixel data of undefined length, a format outside
    :data:`JUDGED_FORMATS`, a NumberOfFrames that is not a positive number, or pixel data of odd length one byte
    short: writing pads it to an even length (PS3.5 §7.1.1), and the stored instance then looks complete.
    """
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax not in NATIVE_SYNTAXES:
        return None
    image = _judged_format(ds)
    if image is None:
        return None
    frames = first_int(ds, 0x00280008) if 0x00280008 in ds else 1
    if frames is None or frames < 1:
        return None
    needed = native_pixel_data_length(*image, frames)
    elem = ds.get_item(PIXEL_DATA)
    if elem is None or elem.value is None:
        return False
    if getattr(elem, "length", None) == 0xFFFFFFFF or getattr(elem, "is_undefined_length", False):
        return None  # encapsulated under a native syntax: malformed, Orthanc's to judge
    held = len(elem.value)
    if held >= needed:
        return True
    return None if held % 2 and held + 1 >= needed else False
