"""Example tool: per-series intensity statistics over a dataset's CT and MR pixel data, written as CSV and JSON.

Run as a job: reads every dataset under ``$DATA_PATH`` (one directory per dataset id, its ``index.json`` listing the
studies and the series to walk: NOTES.md "Dataset on disk"), and writes to ``$SANDBOX_PATH``:

- ``series_stats.csv``: one row per CT or MR series: modality, instance count, voxel count, and mean, standard
  deviation, minimum, 5th, 50th and 95th percentile and maximum of the modality values (PS3.3 C.11.1: Rescale Slope
  and Intercept applied; Hounsfield units for CT). Series are numbered, never named: no identifier leaves.
- ``summary.json``: how many datasets, subjects, studies and series were read, per modality.

Arguments: ``--modalities CT,MR`` (default), ``--max-instances N`` per series (default 2000) and ``--output-dir``
(default ``$SANDBOX_PATH``; anywhere else the job cannot write).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut

STAT_COLUMNS = ("modality", "series", "instances", "voxels", "mean", "std", "min", "p5", "p50", "p95", "max")


def _series_dirs(dataset_dir: Path) -> list[tuple[str, str, Path]]:
    """(subject, study, series directory) of every series the dataset's index lists, in index order."""
    index = json.loads((dataset_dir / "index.json").read_text(encoding="utf-8"))
    found = []
    for study in index:
        for series in study.get("series") or []:
            folder = series.get("folderName") if isinstance(series, dict) else series
            if isinstance(folder, str):
                found.append((study["subjectName"], study["studyId"], dataset_dir / study["path"] / folder))
    return found


def _series_values(directory: Path, modalities: set[str], max_instances: int) -> tuple[str, int, np.ndarray] | None:
    """(modality, instances read, every modality value) of one series, or None if it is not a wanted modality."""
    arrays, modality = [], None
    for path in sorted(directory.glob("*.dcm"))[:max_instances]:
        ds = pydicom.dcmread(path)
        modality = str(ds.get("Modality", ""))
        if modality not in modalities:
            return None
        if "PixelData" not in ds:
            continue
        arrays.append(np.asarray(apply_modality_lut(ds.pixel_array, ds), dtype=np.float64).ravel())
    if not arrays or modality is None:
        return None
    return modality, len(arrays), np.concatenate(arrays)


def _row(modality: str, number: int, instances: int, values: np.ndarray) -> dict[str, Any]:
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    return {"modality": modality, "series": number, "instances": instances, "voxels": int(values.size),
            "mean": round(float(values.mean()), 3), "std": round(float(values.std()), 3),
            "min": float(values.min()), "p5": round(float(p5), 3), "p50": round(float(p50), 3),
            "p95": round(float(p95), 3), "max": float(values.max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="series-stats", description=__doc__.splitlines()[0])
    parser.add_argument("--modalities", default="CT,MR")
    parser.add_argument("--max-instances", type=int, default=2000)
    parser.add_argument("--output-dir", type=Path, default=None)
    options = parser.parse_args(argv)
    modalities = {m.strip().upper() for m in options.modalities.split(",") if m.strip()}
    data = Path(os.environ["DATA_PATH"])
    sandbox = options.output_dir or Path(os.environ["SANDBOX_PATH"])
    rows: list[dict[str, Any]] = []
    subjects, studies, datasets = set(), set(), 0
    per_modality: Counter[str] = Counter()
    for dataset_dir in sorted(p for p in data.iterdir() if (p / "index.json").is_file()):
        datasets += 1
        for subject, study, directory in _series_dirs(dataset_dir):
            result = _series_values(directory, modalities, options.max_instances)
            if result is None:
                continue
            modality, instances, values = result
            rows.append(_row(modality, len(rows) + 1, instances, values))
            subjects.add(subject)
            studies.add(study)
            per_modality[modality] += 1
            print(f"series {len(rows)}: {modality}, {instances} instance(s), {values.size} voxels", flush=True)
    summary = {"datasets": datasets, "subjects": len(subjects), "studies": len(studies), "series": len(rows),
               "series_per_modality": dict(sorted(per_modality.items()))}
    try:
        with (sandbox / "series_stats.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=STAT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        (sandbox / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        print(f"cannot write the results to {sandbox}: [Errno {exc.errno}] {exc.strerror}", flush=True)
        return 1
    print(f"wrote series_stats.csv ({len(rows)} series) and summary.json", flush=True)
    return 0 if rows else 3


if __name__ == "__main__":
    sys.exit(main())
