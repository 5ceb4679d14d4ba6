"""Data-quality checks of series and collections (pure)."""

from __future__ import annotations

import pytest

from eucaim_node.catalogue.quality import (
    METRICS, MINIMUM_TAGS, assess_series, collection_summary, instance_number_findings, measures, step_findings,
    study_summary,
)

AXIAL = "1\\0\\0\\0\\1\\0"
CORONAL = "1\\0\\0\\0\\0\\-1"
FULL = {"PatientID": "p", "Modality": "CT", "BodyPartExamined": "CHEST", "Manufacturer": "ACME",
        "AcquisitionDate": "20200101", "Rows": "64", "Columns": "64", "PixelSpacing": "0.7\\0.7"}


def axial(zs, *, numbers=None, orientation=AXIAL, **extra):
    numbers = numbers or range(1, len(zs) + 1)
    return [{**FULL, "InstanceNumber": str(n), "ImagePositionPatient": f"-10\\-10\\{z}",
             "ImageOrientationPatient": orientation, **extra} for n, z in zip(numbers, zs, strict=True)]


def test_a_regular_volume_is_clean():
    q = assess_series(axial([0, 2.5, 5, 7.5, 10]))
    assert q.applicable and q.geometry_checked and q.flags == ()
    assert q.slice_spacing_mm == 2.5 and q.missing_slices == 0


def test_a_missing_slice_position_is_counted_whatever_the_order():
    tags = axial([0, 2.5, 5, 10, 12.5], numbers=[1, 2, 3, 4, 5])  # 7.5 gone, numbers renumbered
    q = assess_series(list(reversed(tags)))
    assert q.missing_slices == 1 and q.flags == ("missing_slices",)


def test_two_missing_slices_in_one_gap():
    assert assess_series(axial([0, 2, 4, 10, 12])).missing_slices == 2


def test_a_missing_instance_number_is_a_missing_slice_even_without_positions():
    tags = [{**FULL, "InstanceNumber": str(n)} for n in (1, 2, 4)]
    q = assess_series(tags)
    assert not q.geometry_checked and q.missing_instance_numbers == 1 and "missing_slices" in q.flags


def test_duplicated_positions_and_numbers():
    q = assess_series(axial([0, 2, 2, 4, 6], numbers=[1, 2, 2, 3, 4]))
    assert q.duplicate_slices == 1 and q.duplicate_instance_numbers == 1 and q.flags == ("duplicate_slices",)


def test_every_position_repeated_alike_is_phases_not_duplicates():
    q = assess_series(axial([0, 2, 4, 0, 2, 4], numbers=range(1, 7)))
    assert q.phases == 2 and q.duplicate_slices == 0 and q.flags == ()


def test_an_irregular_step_is_inconsistent_spacing():
    q = assess_series(axial([0, 2, 4, 5.3, 7.3, 9.3]))
    assert q.irregular_steps >= 1 and "inconsistent_spacing" in q.flags and q.missing_slices == 0


def test_pixel_spacing_that_changes_within_the_series():
    tags = axial([0, 2, 4])
    tags[1]["PixelSpacing"] = "0.9\\0.9"
    assert assess_series(tags).flags == ("inconsistent_spacing",)


def test_mixed_orientation_is_flagged_and_positions_not_judged():
    tags = axial([0, 2, 4, 6]) + axial([0, 2], numbers=[5, 6], orientation=CORONAL)
    q = assess_series(tags)
    assert q.mixed_orientation and q.flags == ("mixed_orientation",)


def test_rounding_noise_in_orientation_is_not_mixed():
    q = assess_series(axial([0, 2, 4]) + axial([6], numbers=[4], orientation="1\\0.0001\\0\\0\\1\\0"))
    assert not q.mixed_orientation


def test_oblique_slices_are_measured_along_their_normal():
    # Normal of this orientation is (0, 0.6, 0.8)... built from row (1,0,0) and column (0,0.8,-0.6).
    row, col = (1, 0, 0), (0, 0.8, -0.6)
    normal = (0, 0.6, 0.8)
    tags = [{**FULL, "InstanceNumber": str(i + 1), "ImageOrientationPatient": "\\".join(map(str, row + col)),
             "ImagePositionPatient": "\\".join(str(k * 3 * c) for c in normal)} for i, k in enumerate([0, 1, 2, 4, 5])]
    q = assess_series(tags)
    assert q.slice_spacing_mm == pytest.approx(3) and q.missing_slices == 1


@pytest.mark.parametrize("tag", MINIMUM_TAGS)
def test_each_minimum_tag_absent_or_empty_is_reported(tag):
    tags = axial([0, 2, 4])
    tags[2][tag] = ""
    q = assess_series(tags)
    assert q.missing_tags == (tag,) and q.flags == ("missing_minimum_tags",)


def test_undecodable_pixels_counted_by_the_caller():
    assert assess_series(axial([0, 2, 4]), undecodable=1).flags == ("undecodable_pixels",)


def test_a_structured_report_series_is_not_applicable():
    q = assess_series([{"Modality": "SR", "InstanceNumber": "1"}])
    assert not q.applicable and q.flags == () and q.document()["flags"] == []


def test_malformed_values_do_not_crash():
    q = assess_series([{**FULL, "InstanceNumber": "x", "ImagePositionPatient": "a\\b", "ImageOrientationPatient": "1",
                        "PixelSpacing": "nan\\1"}])
    assert q.applicable and not q.geometry_checked


def test_instance_number_and_step_helpers():
    assert instance_number_findings([]) == (0, 0)
    assert instance_number_findings([3, 1, 5, 5]) == (2, 1)
    assert step_findings([0.0, 1.0]).spacing == 1.0


def test_study_and_collection_summaries_and_measures():
    clean = assess_series(axial([0, 2, 4])).document()
    gap = assess_series(axial([0, 2, 6])).document()
    mixed = assess_series(axial([0, 2]) + axial([4], numbers=[3], orientation=CORONAL)).document()
    sr = assess_series([{"Modality": "SR"}]).document()
    one = study_summary([clean, gap, sr])
    two = study_summary([mixed])
    assert one["series_checked"] == 2 and one["flags"] == ["missing_slices"]
    total = collection_summary([one, two, None])
    assert total["series_checked"] == 3 and total["studies_checked"] == 2
    assert total["flagged"]["missing_slices"] == 1 and total["flagged"]["mixed_orientation"] == 1
    values = {m.metric: m.value for m in measures(total)}
    assert set(values) == set(METRICS)
    assert values["series-without-missing-slices"] == 0.66  # 2/3 rounded down
    assert values["series-with-consistent-orientation"] == 0.66
    assert values["minimum-tag-Manufacturer"] == 1.0
    assert measures(collection_summary([])) == ()


def test_one_flagged_series_in_a_thousand_still_shows():
    summary = {"series_checked": 1000, "flagged": {"missing_slices": 1}, "tag_present": {}}
    assert {m.metric: m.value for m in measures(summary)}["series-without-missing-slices"] == 0.99
