"""Precision and recall of the optional OCR burned-in-text check on a generated set.

    uv run python scripts/deid/ocr_eval.py [--images 60] [--seed 3]

Half the images carry burned-in text (a name, a date, an ID, as scanners and
screen captures put them: corner or top/bottom banner, white or grey, sizes
12-28 px) over a synthetic CT-like background (ellipses, noise); the other half
carry none. Each is a 512x512 16-bit MONOCHROME2 CT instance checked by
``eucaim_node.deid.ocr.pixel_text_reasons``. Needs tesseract-ocr (Debian) and the
``ocr`` extra (pytesseract, Pillow, numpy).
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np
from eucaim_node.deid.ocr import ocr_available, pixel_text_reasons
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, generate_uid

FAMILY = ["GARCIA", "MARTIN", "ROSSI", "MULLER", "DUBOIS", "NOWAK", "SILVA", "JANSEN", "KOWALSKI", "FERRARI"]
GIVEN = ["MARIA", "JOHN", "ANNA", "LUCA", "SOFIA", "PIERRE", "EVA", "JAN", "ELENA", "TOMAS"]


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A CT-like slice: body ellipse, a few organs, noise, in HU + 1024."""
    y, x = np.mgrid[0:size, 0:size]
    image = np.zeros((size, size), dtype=np.float64)
    cy, cx = size / 2 + rng.normal(0, 10), size / 2 + rng.normal(0, 10)
    body = ((x - cx) / (size * 0.42)) ** 2 + ((y - cy) / (size * 0.32)) ** 2 <= 1
    image[body] = 1024 + 40
    for _ in range(rng.integers(3, 7)):
        ox, oy = rng.uniform(size * 0.3, size * 0.7, 2)
        rx, ry = rng.uniform(size * 0.03, size * 0.12, 2)
        organ = ((x - ox) / rx) ** 2 + ((y - oy) / ry) ** 2 <= 1
        image[organ & body] = 1024 + rng.uniform(-900, 1200)
    image += rng.normal(0, 25, image.shape)
    return np.clip(image, 0, 4095)


def burn_text(pixels: np.ndarray, rnd: random.Random) -> np.ndarray:
    """Draw a name / date / ID line where scanners and captures put them."""
    size = pixels.shape[0]
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=rnd.choice([12, 14, 16, 20, 24, 28]))
    lines = [
        f"{rnd.choice(FAMILY)}^{rnd.choice(GIVEN)}",
        f"ID {rnd.randint(100000, 999999)}",
        f"{rnd.randint(1940, 2010)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
    ]
    text = "\n".join(rnd.sample(lines, rnd.randint(1, 3)))
    corner = rnd.choice(["tl", "tr", "bl", "br", "top"])
    x = 8 if corner in ("tl", "bl") else size // 2 if corner in ("tr", "br") else size // 4
    y = 8 if corner in ("tl", "tr", "top") else size - 90
    draw.multiline_text((x, y), text, fill=255, font=font)
    mask = np.asarray(canvas, dtype=np.float64) / 255.0
    level = rnd.choice([4095, 3000, 2200])
    return np.maximum(pixels, mask * level)


def instance(pixels: np.ndarray) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.file_meta = Dataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    return ds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    if not ocr_available():
        print("OCR unavailable: apt-get install tesseract-ocr; uv sync (pytesseract, Pillow)", file=sys.stderr)
        return 2
    rng, rnd = np.random.default_rng(args.seed), random.Random(args.seed)
    tp = fp = fn = tn = 0
    started = time.perf_counter()
    for index in range(args.images):
        has_text = index % 2 == 0
        pixels = background(rng, args.size)
        if has_text:
            pixels = burn_text(pixels, rnd)
        flagged = bool(pixel_text_reasons(instance(pixels)))
        tp += has_text and flagged
        fn += has_text and not flagged
        fp += flagged and not has_text
        tn += not flagged and not has_text
    elapsed = time.perf_counter() - started
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    print(f"images {args.images} ({args.images // 2 + args.images % 2} with text), seed {args.seed}")
    print(f"TP {tp}  FP {fp}  FN {fn}  TN {tn}")
    print(f"precision {precision:.3f}  recall {recall:.3f}  ({elapsed / args.images:.2f} s/image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
