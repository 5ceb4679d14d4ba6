"""The outcome of de-identifying one instance: released, or quarantined with reasons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom import Dataset


@dataclass(frozen=True)
class QuarantineReason:
    """Why an instance was not released (or, in :attr:`DeidResult.replaced`, why a value was replaced).

    `code` is one of ``not-dicom``, ``corrupt``, ``unknown-sop-class``,
    ``invalid-uid``, ``burned-in-annotation``, ``high-risk-modality``, ``pixel-text``,
    ``phi-guard`` or ``internal-error`` (replaced values: ``malformed-temporal``,
    ``unshiftable-date``). `tag`/`keyword` name the element
    concerned (``"(0010,0010)"``, ``"PatientName"``), `rule` names the rule
    or guard check that fired. `message` describes the problem and never
    contains the identifying value itself.
    """

    code: str
    message: str
    tag: str | None = None
    keyword: str | None = None
    rule: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """Plain mapping for the machine-readable quarantine report."""
        return {
            "code": self.code,
            "tag": self.tag,
            "keyword": self.keyword,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass(frozen=True)
class DeidResult:
    """Result of :meth:`Deidentifier.deidentify`.

    When `released` is true, `data` holds the de-identified Part 10 bytes and
    `dataset` the de-identified dataset; the UID fields hold the *new*
    (pseudonymised) UIDs. When false the instance must be quarantined; `reasons`
    explains why and `data`/`dataset` are None.
    """

    released: bool
    data: bytes | None = None
    dataset: Dataset | None = None
    reasons: tuple[QuarantineReason, ...] = field(default_factory=tuple)
    #: values the engine could not keep or shift and replaced per the Basic Profile action
    #: (codes ``malformed-temporal``, ``unshiftable-date``): the instance may still be released
    replaced: tuple[QuarantineReason, ...] = field(default_factory=tuple)
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    sop_instance_uid: str | None = None
    patient_pseudonym: str | None = None
    sop_class_uid: str | None = None
    modality: str | None = None
    #: whether the native pixel data hold every frame the image attributes describe, judged on the instance as
    #: received (``deid.pixels.native_pixels_complete``); None: not judged (compressed, not an image, a format
    #: left to the archive's decoder)
    native_pixels_complete: bool | None = None
