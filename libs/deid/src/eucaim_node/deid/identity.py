"""The identifying values of one input instance, and matchers built from them.

Both *Clean Descriptors* (PS3.15 E.3.5, which must remove identifying
information from free text) and the PHI guard (which checks the output) need
to know what this instance's identity looks like: the patient's name parts, IDs,
birth date, addresses, telephone numbers, institution and physician names and
accession number, collected from every depth of the *input*.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom import datadict
from pydicom.dataset import Dataset

from .options import Option, Profile
from .pseudonyms import normalise_uid
from .uids import DEFINITIONAL_UID_TAGS, is_dicom_defined
from .values import encodings_of, keyword_of, text_values, vr_of

MIN_TOKEN = 3  # shorter fragments ("Li", "1") are only matched as a whole value
_UID_TOKEN = re.compile(r"(?<![0-9.])[0-9]+(?:\.[0-9]+)+(?![0-9.])")
_MAYBE_UID = re.compile(r"[0-9]\.[0-9]")

#: keyword -> category; the category decides which option may retain it.
IDENTIFYING_KEYWORDS: dict[str, str] = {
    "PatientID": "patient",
    "OtherPatientIDs": "patient",
    "PatientBirthDate": "birth-date",
    "PatientAddress": "patient",
    "PatientTelephoneNumbers": "patient",
    "PatientTelecomInformation": "patient",
    "MedicalRecordLocator": "patient",
    "AccessionNumber": "patient",
    "AdmissionID": "patient",
    "ServiceEpisodeID": "patient",
    "PatientInsurancePlanCodeSequence": "patient",
    "MilitaryRank": "patient",
    "RegionOfResidence": "patient",
    "PersonAddress": "patient",
    "PersonTelephoneNumbers": "patient",
    "PersonTelecomInformation": "patient",
    "ReferringPhysicianAddress": "patient",
    "ReferringPhysicianTelephoneNumbers": "patient",
    "RequestedProcedureID": "patient",
    "ScheduledProcedureStepID": "patient",
    "PerformedProcedureStepID": "patient",
    "PlacerOrderNumberImagingServiceRequest": "patient",
    "FillerOrderNumberImagingServiceRequest": "patient",
    "StudyID": "patient",
    "InstitutionName": "institution",
    "InstitutionAddress": "institution",
    "InstitutionalDepartmentName": "institution",
    "ResponsibleOrganization": "institution",
    "StationName": "device",
    "DeviceSerialNumber": "device",
}


@dataclass
class IdentifyingValues:
    """Values (normalised, lower case) mapped to the keyword they came from."""

    text: dict[str, str] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)
    #: values the cleaner scrubs but the guard does not flag (see STOPWORDS)
    weak: set[str] = field(default_factory=set)
    _text_re: re.Pattern[str] | None = None
    _scrub_re: re.Pattern[str] | None = None

    def add_text(self, value: str, source: str) -> None:
        norm = " ".join(value.split()).lower()
        if len(norm) >= MIN_TOKEN or (norm and not norm.isdigit() and source == "PatientName"):
            self.text.setdefault(norm, source)

    def add_uid(self, value: str, source: str) -> None:
        uid = normalise_uid(value)
        if uid and not is_dicom_defined(uid):
            self.uids.setdefault(uid, source)

    def compile(self) -> None:
        """Build the matchers once all values are collected."""
        strong = {k: v for k, v in self.text.items() if k not in self.weak}
        self._text_re = _alternation(strong, r"(?<![^\W_])", r"(?![^\W_])")
        self._scrub_re = _alternation(self.text, r"(?<![^\W_])", r"(?![^\W_])")
        # UIDs differ per instance: a set lookup, not a per-instance compiled pattern

    def find(self, value: str) -> tuple[str, str] | None:
        """(kind, source keyword) of the first identifying value found in `value`."""
        if self._text_re is not None:
            hit = self._text_re.search(value)
            if hit:
                return "identifying value", self._source(hit.group(0))
        if self.uids and _MAYBE_UID.search(value):
            for token in _UID_TOKEN.findall(value):
                source = self.uids.get(token)
                if source is not None:
                    return "original UID", source
        return None

    def scrub(self, value: str, replacement: str = "***") -> str:
        """`value` with every identifying value replaced by `replacement`."""
        out = value
        if self._scrub_re is not None:
            out = self._scrub_re.sub(replacement, out)
        if self.uids and _MAYBE_UID.search(out):
            out = _UID_TOKEN.sub(lambda m: replacement if m.group(0) in self.uids else m.group(0), out)
        return out

    def _source(self, matched: str) -> str:
        return self.text.get(" ".join(matched.split()).lower(), "identifying value")


def _alternation(values: dict[str, str], before: str, after: str) -> re.Pattern[str] | None:
    if not values:
        return None
    return _compiled(tuple(sorted(values, key=lambda v: (-len(v), v))), before, after)


@lru_cache(maxsize=512)
def _compiled(parts: tuple[str, ...], before: str, after: str) -> re.Pattern[str]:
    """One case-insensitive alternation; cached, as a series repeats the same identity."""
    body = "|".join(_flexible(p) for p in parts)
    return re.compile(f"{before}(?:{body}){after}", re.IGNORECASE)


def _flexible(value: str) -> str:
    """Escape `value`, letting any whitespace in it match any run of whitespace."""
    return r"\s+".join(re.escape(part) for part in value.split(" "))


def person_name_parts(value: str) -> Iterator[str]:
    """The whole name, each component and each word of a PN value (PS3.5 6.2)."""
    text = str(value)
    for group in text.split("="):
        components = [c.strip() for c in group.split("^")]
        named = [c for c in components[:3] if c]  # family, given, middle
        if named:
            yield " ".join(named)
            yield " ".join(reversed(named[:2]))
            yield ", ".join(named[:2])
        for component in named:
            yield component
            for word in re.split(r"[\s,.\-']+", component):
                if len(word) >= MIN_TOKEN:
                    yield word


def date_forms(value: str) -> Iterator[str]:
    """A DA value in the forms free text uses: 19700131, 1970-01-31, 31/01/1970, 31.01.1970..."""
    text = value.strip()
    if not re.fullmatch(r"\d{8}", text):
        return
    y, m, d = text[:4], text[4:6], text[6:]
    yield text
    yield f"{y}-{m}-{d}"
    yield f"{y}/{m}/{d}"
    yield f"{d}/{m}/{y}"
    yield f"{d}.{m}.{y}"
    yield f"{d}-{m}-{y}"
    yield f"{m}/{d}/{y}"


#: Words that are not distinguishing on their own (placeholders in test data, titles,
#: name particles, our own dummy values). The cleaner still scrubs them when they are
#: part of this instance's identity; the guard does not block release on them alone
#: (the whole name they belong to is still guarded).
STOPWORDS = frozenset(
    """name first last given family middle text test enter patient anonymous anonymized
    anonymised unknown none null male female other observer verifying physician doctor
    prof the and von van der den del della des las los dos ben bin mrs""".split()
)


def collect_identifying_values(
    ds: Dataset, profile: Profile, *, ignore: tuple[str, ...] = ()
) -> IdentifyingValues:
    """Collect this instance's identifying values from every depth of `ds` (the input).

    `ignore` lists values the engine itself writes (the site prefix of the
    patient pseudonym), which must not count as identifying.
    """
    found = IdentifyingValues()
    retained = _retained_categories(profile)
    definitional: set[str] = set()
    _collect(ds, found, retained, profile.has(Option.RETAIN_UIDS), None, definitional)
    _drop_equipment_values(ds, found)
    for uid in definitional:  # kept in the output, so it cannot be identifying
        found.uids.pop(uid, None)
    for word in ignore:
        found.text.pop(word.strip().lower(), None)
    found.weak = {word for word in STOPWORDS if word in found.text}
    found.compile()
    return found


#: Kept attributes that describe equipment, not people. An institution or device
#: value that occurs inside one of them (test data often put the vendor's name in
#: InstitutionName) would make the guard reject the vendor's name; it is not used.
EQUIPMENT_TAGS = (0x00080070, 0x00081090, 0x00181020)  # Manufacturer, ManufacturerModelName, SoftwareVersions
_EQUIPMENT_CATEGORIES = frozenset({"institution", "device"})

#: tag -> (keyword, category), from :data:`IDENTIFYING_KEYWORDS`.
IDENTIFYING_TAGS: dict[int, tuple[str, str]] = {
    int(datadict.tag_for_keyword(k)): (k, c) for k, c in IDENTIFYING_KEYWORDS.items()
}


def _drop_equipment_values(ds: Dataset, found: IdentifyingValues) -> None:
    encodings = encodings_of(ds)
    equipment = " | ".join(
        " ".join(v.split()).lower()
        for tag in EQUIPMENT_TAGS
        if tag in ds
        for v in text_values(ds.get_item(tag), encodings)
    )
    if not equipment:
        return
    for norm, source in list(found.text.items()):
        if IDENTIFYING_KEYWORDS.get(source) in _EQUIPMENT_CATEGORIES and norm in equipment:
            del found.text[norm]


def _retained_categories(profile: Profile) -> frozenset[str]:
    kept = set()
    if profile.has(Option.RETAIN_INSTITUTION_IDENTITY):
        kept.add("institution")
    if profile.has(Option.RETAIN_DEVICE_IDENTITY):
        kept.add("device")
    return frozenset(kept)


def _collect(
    ds: Dataset,
    found: IdentifyingValues,
    retained: frozenset[str],
    keep_uids: bool,
    inherited: list[str] | None,
    definitional: set[str],
) -> None:
    encodings = encodings_of(ds, inherited)
    for elem in ds.elements():
        tag = int(elem.tag)
        if tag >> 16 & 1:  # private
            continue
        vr = vr_of(elem)
        if vr == "SQ":
            for item in ds[tag].value or ():
                _collect(item, found, retained, keep_uids, encodings, definitional)
            continue
        if vr == "PN":
            for name in text_values(elem, encodings):
                for part in person_name_parts(name):
                    found.add_text(part, keyword_of(tag))
            continue
        if vr == "UI":
            target = definitional if tag in DEFINITIONAL_UID_TAGS else None
            for uid in text_values(elem, encodings):
                if target is not None:
                    target.add(normalise_uid(uid))
                elif not keep_uids:
                    found.add_uid(uid, keyword_of(tag))
            continue
        entry = IDENTIFYING_TAGS.get(tag)
        if entry is None:
            continue
        keyword, category = entry
        if category in retained:
            continue
        for value in text_values(elem, encodings):
            if category == "birth-date":
                found.add_text(value, keyword)
                for form in date_forms(value):
                    found.add_text(form, keyword)
            else:
                found.add_text(value, keyword)
