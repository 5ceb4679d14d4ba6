"""Kept UIDs (issue 9, item 1): a UID the engine keeps, or that names an output path, must be a
valid UID (PS3.5 §9.1), else the instance is quarantined with ``invalid-uid``."""

from __future__ import annotations

import pytest
from eucaim_node.deid import BASIC, EUCAIM_DEFAULT, Option
from eucaim_node.deid.uids import is_valid_uid, uid_defect

from .conftest import make_ct
from .helpers import run

pytestmark = pytest.mark.usefixtures("quiet")

RETAIN = EUCAIM_DEFAULT.with_options(Option.RETAIN_UIDS)


@pytest.mark.parametrize(
    ("uid", "defect"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", None), ("0.1", None), ("2.25.0", None), ("9" * 64, None),
        ("", "empty"), ("9" * 65, "longer than 64 characters"),
        ("1.2.840.10008.9/../../x", "characters other than the digits 0-9 and '.'"),
        ("/etc/passwd", "characters other than the digits 0-9 and '.'"),
        ("1.2.3\n", "characters other than the digits 0-9 and '.'"),
        ("1.٢.3", "characters other than the digits 0-9 and '.'"),  # an Arabic-Indic digit
        ("1..2", "an empty component"), (".1.2", "an empty component"), ("1.2.", "an empty component"),
        ("1.02", "a component with a leading zero"), ("00", "a component with a leading zero"),
    ],
)
def test_uid_syntax(uid: str, defect: str | None) -> None:
    assert uid_defect(uid) == defect
    assert is_valid_uid(uid) is (defect is None)


def _reason(result, keyword: str):
    assert not result.released
    (reason,) = result.reasons
    assert (reason.code, reason.keyword, reason.rule) == ("invalid-uid", keyword, "uid-syntax")
    return reason


def test_uid_under_the_standard_root_is_kept_so_it_must_be_valid() -> None:
    """The default profile keeps UIDs under 1.2.840.10008 verbatim: a traversal there is quarantined."""
    hostile = "1.2.840.10008.9/../../x"
    result = run(make_ct(StudyInstanceUID=hostile))
    reason = _reason(result, "StudyInstanceUID")
    assert hostile not in reason.message
    assert result.study_instance_uid is None  # no invalid UID reaches a caller that builds paths


@pytest.mark.parametrize(
    ("keyword", "hostile"),
    [("StudyInstanceUID", "../../../../tmp/x"), ("SeriesInstanceUID", "/tmp/abs"), ("SOPInstanceUID", "1.2.03")],
)
def test_retain_uids_keeps_only_valid_uids(keyword: str, hostile: str) -> None:
    _reason(run(make_ct(**{keyword: hostile}), RETAIN), keyword)


def test_any_kept_uid_at_any_depth_is_checked() -> None:
    """FrameOfReferenceUID under Retain UIDs, and a class UID inside a sequence under Basic."""
    _reason(run(make_ct(FrameOfReferenceUID="1.2..3"), RETAIN), "FrameOfReferenceUID")
    ds = make_ct()
    ds.ReferencedImageSequence[0].ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.02"
    _reason(run(ds, BASIC), "ReferencedImageSequence[0].ReferencedSOPClassUID")


def test_valid_retained_uids_are_released_unchanged() -> None:
    result = run(make_ct(), RETAIN)
    assert result.released and result.study_instance_uid == "1.2.3.4.5.6.7.1"
