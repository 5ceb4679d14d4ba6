"""Optional detection of text burned into pixel data (PS3.15 E.3.1).

The engine does not apply *Clean Pixel Data*: it never alters pixels. With
``Profile(ocr=True)`` it runs Tesseract OCR (Debian package ``tesseract-ocr``,
Python binding ``pytesseract``; install the ``ocr`` extra) on the pixel data of
instances that are otherwise released, and quarantines those in which it reads
words. Pixel data that cannot be decoded is quarantined too: OCR on means no
unchecked pixels leave.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from .result import QuarantineReason

PIXEL_DATA_TAG = "(7FE0,0010)"


@dataclass(frozen=True)
class OcrSettings:
    """A word counts when Tesseract's confidence is at least `min_confidence` and it has at
    least `min_chars` letters or digits; frames sampled: first, middle and last."""

    min_confidence: float = 60.0
    min_chars: int = 3
    upscale_below: int = 512


DEFAULT_SETTINGS = OcrSettings()


def ocr_available() -> bool:
    """True if pytesseract, Pillow, numpy and the tesseract binary are all present."""
    try:
        import numpy  # noqa: F401
        import PIL  # noqa: F401
        import pytesseract

        pytesseract.get_tesseract_version()
    except Exception:  # noqa: BLE001 - any missing piece means no OCR
        return False
    return True


def _frames(ds: Dataset):  # -> list[numpy.ndarray]
    array = ds.pixel_array
    frames = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.get("SamplesPerPixel") or 1)
    if frames == 1:
        return [array]
    picks = sorted({0, frames // 2, frames - 1})
    return [array[i] for i in picks] if array.ndim > (3 if samples > 1 else 2) else [array]


def _to_image(frame, settings: OcrSettings):  # -> PIL.Image.Image
    import numpy as np
    from PIL import Image

    data = np.asarray(frame, dtype=np.float64)
    if data.ndim == 3:  # colour: luminance
        data = data[..., :3].mean(axis=2)
    low, high = float(data.min()), float(data.max())
    scaled = np.zeros(data.shape, dtype=np.uint8) if high <= low else ((data - low) * (255.0 / (high - low))).astype(np.uint8)
    image = Image.fromarray(scaled, mode="L")
    if max(image.size) < settings.upscale_below:
        factor = max(1, settings.upscale_below // max(image.size))
        image = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    return image


def words_in_image(image, settings: OcrSettings = DEFAULT_SETTINGS) -> list[str]:
    """Words Tesseract reads in `image` (sparse-text mode) above the confidence threshold."""
    import pytesseract

    data = pytesseract.image_to_data(image, config="--psm 11", output_type=pytesseract.Output.DICT)
    words = []
    for text, confidence in zip(data["text"], data["conf"], strict=True):
        word = str(text).strip()
        if float(confidence) >= settings.min_confidence and sum(c.isalnum() for c in word) >= settings.min_chars:
            words.append(word)
    return words


def pixel_text_reasons(ds: Dataset, settings: OcrSettings = DEFAULT_SETTINGS) -> list[QuarantineReason]:
    """A ``pixel-text`` reason if OCR reads words in the pixel data (never the words themselves)."""
    if "PixelData" not in ds:
        return []
    try:
        images = [_to_image(frame, settings) for frame in _frames(ds)]
    except Exception as exc:  # noqa: BLE001 - undecodable pixels cannot be checked
        return [
            QuarantineReason(
                code="pixel-text",
                message=f"pixel data could not be decoded for OCR ({type(exc).__name__})",
                tag=PIXEL_DATA_TAG,
                keyword="PixelData",
                rule="ocr",
            )
        ]
    count = sum(len(words_in_image(image, settings)) for image in images)
    if not count:
        return []
    return [
        QuarantineReason(
            code="pixel-text",
            message=f"OCR read {count} word(s) in the pixel data (burned-in text; words withheld)",
            tag=PIXEL_DATA_TAG,
            keyword="PixelData",
            rule="ocr",
        )
    ]
