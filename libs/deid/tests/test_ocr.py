"""Optional OCR of burned-in text (needs tesseract-ocr and the ocr extra)."""

from dataclasses import replace

import numpy as np
import pytest
from eucaim_node.deid import EUCAIM_DEFAULT
from eucaim_node.deid.ocr import ocr_available, pixel_text_reasons

from .conftest import make_ct
from .helpers import run



@pytest.fixture(autouse=True)
def _tesseract_installed():
    # `make test` installs Debian's tesseract-ocr (eucaim-node stack install); missing, these tests fail.
    assert ocr_available(), "tesseract-ocr / pytesseract not installed: run `uv run eucaim-node stack install`"


def _ct_with(pixels: np.ndarray):
    ds = make_ct()
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    return ds


def _pixels(text: str | None) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(1)
    pixels = rng.normal(1000, 20, (256, 256))
    if text:
        canvas = Image.new("L", (256, 256), 0)
        ImageDraw.Draw(canvas).text((10, 200), text, fill=255, font=ImageFont.load_default(size=20))
        pixels = np.maximum(pixels, np.asarray(canvas, dtype=np.float64) / 255 * 4000)
    return np.clip(pixels, 0, 4095)


def test_burned_in_name_is_found() -> None:
    (reason,) = pixel_text_reasons(_ct_with(_pixels("GARCIA^MARIA 1970-01-31")))
    assert reason.code == "pixel-text"
    assert "GARCIA" not in reason.message


def test_plain_image_passes() -> None:
    assert pixel_text_reasons(_ct_with(_pixels(None))) == []


def test_engine_quarantines_when_ocr_is_on() -> None:
    profile = replace(EUCAIM_DEFAULT, ocr=True)
    result = run(_ct_with(_pixels("GARCIA^MARIA")), profile)
    assert not result.released
    assert [r.code for r in result.reasons] == ["pixel-text"]
    assert run(_ct_with(_pixels(None)), profile).released
