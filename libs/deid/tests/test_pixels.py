"""Native pixel data judged complete, truncated or not judged (deid.pixels), and the engine's record of it."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
)

from eucaim_node.deid import Deidentifier
from eucaim_node.deid.pixels import native_pixel_data_length, native_pixels_complete

from .conftest import KEY, make_ct, to_bytes


def image(pixels: bytes | None, *, rows: int = 4, columns: int = 4, syntax: str = ExplicitVRLittleEndian,
          **attributes: object) -> pydicom.Dataset:
    """The shared small CT (16-bit MONOCHROME2, 4 × 4: 32 bytes) with these pixel bytes and attributes."""
    ds = make_ct(Rows=rows, Columns=columns, **attributes)
    ds.file_meta.TransferSyntaxUID = syntax
    if pixels is None:
        del ds.PixelData
    else:
        ds.PixelData = pixels
    return ds


def test_the_length_rule_counts_every_sample_of_every_frame_and_packs_single_bits():
    assert native_pixel_data_length(512, 512, 1, 16) == 524_288
    assert native_pixel_data_length(4, 4, 3, 8, frames=5) == 240
    assert native_pixel_data_length(3, 3, 1, 1) == 2  # 9 bits: two bytes
    assert native_pixel_data_length(8, 8, 1, 1, frames=2) == 16


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_complete_native_pixel_data_are_judged_complete_in_every_native_syntax(syntax):
    assert native_pixels_complete(image(bytes(32), syntax=syntax)) is True


def test_pixel_data_one_byte_short_of_an_odd_length_are_truncated():
    # 3 × 3 × 8 bits: 9 bytes, stored padded to 10; 8 bytes miss a pixel even after padding.
    mono8 = {"BitsAllocated": 8, "BitsStored": 8, "HighBit": 7}
    assert native_pixels_complete(image(bytes(8), rows=3, columns=3, **mono8)) is False
    assert native_pixels_complete(image(bytes(9), rows=3, columns=3, **mono8)) is True  # odd, not yet padded
    assert native_pixels_complete(image(bytes(10), rows=3, columns=3, **mono8)) is True  # padded to even


def test_pixel_data_one_byte_short_of_an_even_length_are_not_judged():
    # 31 of 32 bytes: writing pads the value to 32, and the stored instance looks complete to a decoder.
    assert native_pixels_complete(image(bytes(31))) is None
    assert native_pixels_complete(image(bytes(30))) is False


def test_missing_or_empty_pixel_data_of_an_image_are_incomplete():
    assert native_pixels_complete(image(None)) is False
    assert native_pixels_complete(image(b"")) is False


def test_every_frame_must_be_there():
    assert native_pixels_complete(image(bytes(32 * 3), NumberOfFrames=3)) is True
    assert native_pixels_complete(image(bytes(32 * 2), NumberOfFrames=3)) is False  # the first frame is whole
    assert native_pixels_complete(image(bytes(32), NumberOfFrames=0)) is None


def test_colour_needs_three_samples_per_pixel():
    rgb = {"PhotometricInterpretation": "RGB", "SamplesPerPixel": 3, "BitsAllocated": 8, "BitsStored": 8,
           "HighBit": 7, "PlanarConfiguration": 0}
    assert native_pixels_complete(image(bytes(48), **rgb)) is True
    assert native_pixels_complete(image(bytes(16), **rgb)) is False
    assert native_pixels_complete(image(bytes(48), **{**rgb, "PlanarConfiguration": 1})) is None


@pytest.mark.parametrize("syntax", [JPEGBaseline8Bit, JPEG2000Lossless])
def test_compressed_pixel_data_are_not_judged(syntax):
    assert native_pixels_complete(image(b"\xfe\xff\x00\xe0" + bytes(4), syntax=syntax)) is None


@pytest.mark.parametrize("attributes", [
    {"BitsAllocated": 1, "BitsStored": 1, "HighBit": 0},  # packed bits: Orthanc's own rules (width a multiple of 8)
    {"BitsAllocated": 32, "BitsStored": 32, "HighBit": 31},
    {"BitsAllocated": 8, "BitsStored": 7, "HighBit": 6},  # Orthanc decodes 8-bit grey only with 8 bits stored
    {"BitsAllocated": 8, "BitsStored": 8, "HighBit": 7, "PixelRepresentation": 1},
    {"BitsStored": 12, "HighBit": 15},
    {"PhotometricInterpretation": "PALETTE COLOR"},
    {"PhotometricInterpretation": "YBR_FULL", "SamplesPerPixel": 3},
])
def test_formats_left_to_orthancs_decoder_are_not_judged(attributes):
    assert native_pixels_complete(image(bytes(2), **attributes)) is None


def test_instances_without_image_attributes_are_not_judged():
    ds = image(None)
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated",
                    "BitsStored", "HighBit", "PixelRepresentation"):
        del ds[keyword]
    assert native_pixels_complete(ds) is None
    without_syntax = image(bytes(32))
    del without_syntax.file_meta.TransferSyntaxUID
    assert native_pixels_complete(without_syntax) is None


def test_the_engine_records_the_judgement_of_a_released_instance():
    engine = Deidentifier(KEY, site_prefix="EUCAIM-T")
    complete = engine.deidentify(to_bytes(image(bytes(32))))
    assert complete.released and complete.native_pixels_complete is True
    without_pixels = engine.deidentify(to_bytes(image(None)))
    assert without_pixels.released and without_pixels.native_pixels_complete is False
    compressed = engine.deidentify_dataset(image(b"\xfe\xff\x00\xe0" + bytes(4), syntax=JPEGBaseline8Bit))
    assert compressed.native_pixels_complete is None


def test_the_engine_quarantines_truncated_native_pixel_data_by_the_same_length_rule():
    # 17 pixels of 1 bit need 3 bytes: two are truncated (the rule rounds the bits up, not down to 2 bytes).
    one_bit = {"BitsAllocated": 1, "BitsStored": 1, "HighBit": 0}
    data = to_bytes(image(b"\x01\x00", rows=1, columns=17, **one_bit))
    result = Deidentifier(KEY, site_prefix="EUCAIM-T").deidentify(data)
    assert not result.released and result.reasons[0].keyword == "PixelData"
