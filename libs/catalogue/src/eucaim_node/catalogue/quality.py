"""Data quality of de-identified series and of collections (pure: instance tags in, findings out).

Checks, per image series (instances with ``Rows``/``Columns``; SR, KO, PR series are not images and are
reported as not applicable):

- **Slices along the normal** (PS3.3 C.7.6.2.1.1): each slice's position is ImagePositionPatient
  (0020,0032) projected on the normal of ImageOrientationPatient (0020,0037), the cross product of
  its row and column direction cosines. Sorted positions are expected at a regular spacing (the
  most common step): a step that is a whole multiple *k* ≥ 2 of it means *k*-1 missing slices, a step of
  (about) zero a duplicated slice, any other step an inconsistent spacing. A series whose every
  position occurs the same number of times (*n* > 1) is read as *n* phases of one volume (dynamic MR,
  multi-phase CT), not as duplicates.
- **Instance numbers** (0020,0013): repeated numbers are duplicates, numbers absent between the
  smallest and the largest are missing instances.
- **Orientation**: every slice's direction cosines equal the first one's (within :data:`COSINE_TOLERANCE`);
  otherwise the series has mixed orientation, and its slice positions are not checked (they lie
  along different normals).
- **Pixel spacing** (0028,0030) different between slices is an inconsistent spacing as well.
- **EUCAIM's minimum tags** (:data:`MINIMUM_TAGS`): a tag absent or empty in any instance.
- **Pixel data that cannot be decoded**: counted by the caller and passed in (metadata takes anonymisation's
  judgement of native pixel data's length, else asks the archive to decode each instance: decision 0131).

Series without positions (projection radiography, mammography, single slices) get only the checks
that apply to them. Collection measures are proportions of checked series (W3C DQV values), never
counts of subjects.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: EUCAIM's minimum set of DICOM attributes for an imaging dataset to be onboarded.
MINIMUM_TAGS = ("PatientID", "Modality", "BodyPartExamined", "Manufacturer", "AcquisitionDate")
#: Two direction cosines closer than this are the same orientation (PS3.3 allows float rounding; 1e-3 ≈ 0.06°).
COSINE_TOLERANCE = 1e-3
#: Relative tolerance of a slice step against the series' regular step.
STEP_TOLERANCE = 0.1
#: Steps closer than this (mm) are the same position.
SAME_POSITION_MM = 0.01

#: The flags a series can carry, in the order reports show them.
FLAGS = ("missing_slices", "duplicate_slices", "inconsistent_spacing", "mixed_orientation",
         "missing_minimum_tags", "undecodable_pixels")


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    """A multi-valued decimal string (``"a\\b\\c"``) or list as ``n`` floats; None if absent or malformed."""
    if value in (None, ""):
        return None
    parts = value if isinstance(value, list | tuple) else str(value).split("\\")
    try:
        numbers = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == n and all(math.isfinite(x) for x in numbers) else None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def is_image(tags: Mapping[str, Any]) -> bool:
    """An instance with pixel dimensions (Rows, Columns: PS3.3 C.7.6.3); SR, KO and PR instances have none."""
    return bool(tags.get("Rows")) and bool(tags.get("Columns"))


@dataclass(frozen=True)
class Slice:
    """What the checks read from one instance."""

    instance_number: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    is_image: bool
    missing_tags: frozenset[str]

    @classmethod
    def of(cls, tags: Mapping[str, Any]) -> Slice:
        """From one instance's tags by keyword (Orthanc's simplified tags)."""
        return cls(
            instance_number=_int(tags.get("InstanceNumber")),
            position=_floats(tags.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
            orientation=_floats(tags.get("ImageOrientationPatient"), 6),  # type: ignore[arg-type]
            pixel_spacing=_floats(tags.get("PixelSpacing"), 2),  # type: ignore[arg-type]
            is_image=is_image(tags),
            missing_tags=frozenset(t for t in MINIMUM_TAGS if not str(tags.get(t) or "").strip()),
        )


@dataclass(frozen=True)
class SeriesQuality:
    """The findings of one series; ``flags`` names every check it fails (see :data:`FLAGS`)."""

    applicable: bool  # an image series (the checks apply)
    instances: int
    geometry_checked: bool  # positions and orientations present in every slice
    missing_slices: int = 0
    duplicate_slices: int = 0
    missing_instance_numbers: int = 0
    duplicate_instance_numbers: int = 0
    irregular_steps: int = 0
    mixed_orientation: bool = False
    mixed_pixel_spacing: bool = False
    phases: int = 1
    slice_spacing_mm: float | None = None
    missing_tags: tuple[str, ...] = ()
    undecodable: int = 0

    @property
    def flags(self) -> tuple[str, ...]:
        if not self.applicable:
            return ()
        raised = {
            "missing_slices": self.missing_slices > 0 or self.missing_instance_numbers > 0,
            "duplicate_slices": self.duplicate_slices > 0 or self.duplicate_instance_numbers > 0,
            "inconsistent_spacing": self.irregular_steps > 0 or self.mixed_pixel_spacing,
            "mixed_orientation": self.mixed_orientation,
            "missing_minimum_tags": bool(self.missing_tags),
            "undecodable_pixels": self.undecodable > 0,
        }
        return tuple(flag for flag in FLAGS if raised[flag])

    def document(self) -> dict[str, Any]:
        """As stored on the catalogue's series document."""
        return {"applicable": self.applicable, "instances": self.instances, "geometry_checked": self.geometry_checked,
                "missing_slices": self.missing_slices, "duplicate_slices": self.duplicate_slices,
                "missing_instance_numbers": self.missing_instance_numbers,
                "duplicate_instance_numbers": self.duplicate_instance_numbers,
                "irregular_steps": self.irregular_steps, "mixed_orientation": self.mixed_orientation,
                "mixed_pixel_spacing": self.mixed_pixel_spacing, "phases": self.phases,
                "slice_spacing_mm": self.slice_spacing_mm, "missing_tags": list(self.missing_tags),
                "undecodable": self.undecodable, "flags": list(self.flags)}


def _normal(orientation: tuple[float, ...]) -> tuple[float, float, float]:
    """Row × column direction cosines (PS3.3 C.7.6.2.1.1): the slice normal."""
    r, c = orientation[:3], orientation[3:]
    return (r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0])


def _same(a: Iterable[float], b: Iterable[float], tolerance: float) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


def instance_number_findings(numbers: list[int]) -> tuple[int, int]:
    """(missing, duplicated) instance numbers: absent between the smallest and largest; repeats beyond the first."""
    if not numbers:
        return 0, 0
    distinct = set(numbers)
    return (max(distinct) - min(distinct) + 1 - len(distinct)), len(numbers) - len(distinct)


@dataclass(frozen=True)
class StepFindings:
    missing: int
    duplicates: int
    irregular: int
    phases: int
    spacing: float | None


def step_findings(distances: list[float]) -> StepFindings:
    """Missing, duplicated and irregular slices among positions along the normal (any order)."""
    rounded = Counter(round(d / SAME_POSITION_MM) for d in distances)
    repeats = set(rounded.values())
    phases = repeats.pop() if len(repeats) == 1 else 1
    duplicates = 0 if phases > 1 else sum(n - 1 for n in rounded.values())
    unique = sorted(k * SAME_POSITION_MM for k in rounded)
    steps = [b - a for a, b in zip(unique, unique[1:], strict=False)]
    if len(steps) < 2:  # two slices define no regular spacing to hold them to
        return StepFindings(0, duplicates, 0, phases, steps[0] if steps else None)
    # The regular spacing is the most common step (ties: the smallest), so one gap among three slices is a gap.
    counts = Counter(round(step, 2) for step in steps)
    spacing = min(counts, key=lambda step: (-counts[step], step))
    missing = irregular = 0
    for step in steps:
        multiple = round(step / spacing)
        if multiple >= 1 and abs(step - multiple * spacing) <= STEP_TOLERANCE * spacing:
            missing += multiple - 1
        else:
            irregular += 1
    return StepFindings(missing, duplicates, irregular, phases, round(spacing, 4))


def assess_series(instance_tags: Iterable[Mapping[str, Any]], *, undecodable: int = 0) -> SeriesQuality:
    """The quality of one series from the tags of all its instances (PS3.3 C.7.6.2, C.7.6.1)."""
    slices = [Slice.of(tags) for tags in instance_tags]
    images = [s for s in slices if s.is_image]
    if not images:
        return SeriesQuality(applicable=False, instances=len(slices), geometry_checked=False)
    missing_tags = tuple(t for t in MINIMUM_TAGS if any(t in s.missing_tags for s in images))
    missing_numbers, duplicate_numbers = instance_number_findings(
        [s.instance_number for s in images if s.instance_number is not None])
    spacings = {s.pixel_spacing for s in images if s.pixel_spacing is not None}
    mixed_spacing = any(not _same(a, b, 1e-4) for a in spacings for b in spacings)
    common = dict(applicable=True, instances=len(slices), missing_tags=missing_tags, undecodable=undecodable,
                  missing_instance_numbers=missing_numbers, duplicate_instance_numbers=duplicate_numbers,
                  mixed_pixel_spacing=mixed_spacing)
    if any(s.position is None or s.orientation is None for s in images):
        return SeriesQuality(geometry_checked=False, **common)
    first = images[0].orientation
    assert first is not None
    if any(not _same(s.orientation, first, COSINE_TOLERANCE) for s in images):  # type: ignore[arg-type]
        return SeriesQuality(geometry_checked=True, mixed_orientation=True, **common)
    normal = _normal(first)
    distances = [sum(p * n for p, n in zip(s.position, normal, strict=True)) for s in images]  # type: ignore[arg-type]
    steps = step_findings(distances)
    return SeriesQuality(geometry_checked=True, missing_slices=steps.missing, duplicate_slices=steps.duplicates,
                         irregular_steps=steps.irregular, phases=steps.phases, slice_spacing_mm=steps.spacing, **common)


# -- studies and collections ------------------------------------------------------------------------------------

def study_summary(series_quality: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A study's quality from its series' documents: series checked, flagged per check, minimum tags present."""
    checked = [q for q in series_quality if q.get("applicable")]
    return {
        "series_checked": len(checked),
        "flagged": {flag: sum(1 for q in checked if flag in q.get("flags", ())) for flag in FLAGS},
        "tag_present": {tag: sum(1 for q in checked if tag not in q.get("missing_tags", ())) for tag in MINIMUM_TAGS},
        "flags": sorted({flag for q in checked for flag in q.get("flags", ())}, key=FLAGS.index),
    }


def collection_summary(study_summaries: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Sum of the studies' summaries (a study indexed before quality was computed counts as unchecked)."""
    total = {"series_checked": 0, "studies_checked": 0, "flagged": dict.fromkeys(FLAGS, 0),
             "tag_present": dict.fromkeys(MINIMUM_TAGS, 0)}
    for summary in study_summaries:
        if not summary:
            continue
        total["studies_checked"] += 1
        total["series_checked"] += int(summary.get("series_checked", 0))
        for key in ("flagged", "tag_present"):
            for name, n in (summary.get(key) or {}).items():
                if name in total[key]:
                    total[key][name] += int(n)
    return total


@dataclass(frozen=True)
class Measure:
    """One DQV measurement of a collection: ``metric`` (a key of :data:`METRICS`) and its value in [0, 1]."""

    metric: str
    value: float


@dataclass(frozen=True)
class Metric:
    label: str
    definition: str
    dimension: str  # a key of DIMENSIONS


DIMENSIONS = {
    "completeness": "Completeness: the data holds every slice and attribute it should.",
    "consistency": "Consistency: the slices of a series agree with each other.",
    "accessibility": "Accessibility: the pixel data can be read.",
}
METRICS: dict[str, Metric] = {
    "series-without-missing-slices": Metric(
        "Series without missing slices", "Proportion of checked image series with no gap in their instance numbers "
        "and no missing slice position along the slice normal.", "completeness"),
    "series-without-duplicate-slices": Metric(
        "Series without duplicated slices", "Proportion of checked image series with no repeated instance number and "
        "no repeated slice position (repeated volumes of a multi-phase series excepted).", "consistency"),
    "series-with-consistent-spacing": Metric(
        "Series with consistent spacing", "Proportion of checked image series whose slice steps and pixel spacing "
        "are regular.", "consistency"),
    "series-with-consistent-orientation": Metric(
        "Series with one orientation", "Proportion of checked image series whose slices share one orientation.",
        "consistency"),
    "series-with-decodable-pixels": Metric(
        "Series with decodable pixel data", "Proportion of checked image series whose every instance's pixel data "
        "the node could decode.", "accessibility"),
    **{f"minimum-tag-{tag}": Metric(
        f"{tag} present", f"Proportion of checked image series whose every instance has {tag}, "
        "one of EUCAIM's minimum attributes.", "completeness") for tag in MINIMUM_TAGS},
}
_FLAG_OF_METRIC = {"series-without-missing-slices": "missing_slices",
                   "series-without-duplicate-slices": "duplicate_slices",
                   "series-with-consistent-spacing": "inconsistent_spacing",
                   "series-with-consistent-orientation": "mixed_orientation",
                   "series-with-decodable-pixels": "undecodable_pixels"}


def measures(summary: Mapping[str, Any] | None, *, digits: int = 2) -> tuple[Measure, ...]:
    """The DQV measurements of a collection summary: proportions of checked series, rounded *down* (one flagged
    series in a thousand still shows as less than 1); none if no series was checked."""
    if not summary or not summary.get("series_checked"):
        return ()
    n = summary["series_checked"]
    flagged, present = summary.get("flagged", {}), summary.get("tag_present", {})
    values = {metric: 1 - flagged.get(flag, 0) / n for metric, flag in _FLAG_OF_METRIC.items()}
    values |= {f"minimum-tag-{tag}": present.get(tag, 0) / n for tag in MINIMUM_TAGS}
    scale = 10 ** digits
    return tuple(Measure(metric, math.floor(values[metric] * scale + 1e-9) / scale) for metric in METRICS)
