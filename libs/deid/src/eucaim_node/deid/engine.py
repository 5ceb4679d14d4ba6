"""The de-identification engine: PS3.15 Annex E, Table E.1-1 and its options.

`Deidentifier.deidentify` takes Part 10 bytes and returns a
:class:`~eucaim_node.deid.result.DeidResult`; it never raises on bad input.
"""

from __future__ import annotations

import copy
import io
import os
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pydicom
from pydicom import config as pydicom_config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag

from . import compound, dates, structured
from .dates import TEMPORAL_VRS
from .cleaner import clean_text
from .dummies import DUMMY_PERSON, dummy_for
from .guard import check_phi
from .identity import IdentifyingValues, collect_identifying_values
from .keys import check_key
from .methods import record_methods
from .options import EUCAIM_DEFAULT, Option, Profile
from .pixels import native_pixel_data_length, native_pixels_complete
from .pseudonyms import date_shift_days, normalise_uid, pseudonymise_patient_id, pseudonymise_uid
from .result import DeidResult, QuarantineReason
from .risk import assess_pixel_risk, assess_sop_class
from .table import Rule, Table, choose_action, load_table
from .uids import DEFINITIONAL_UID_TAGS, DICOM_UID_ROOT, invalid_uid_reason, invalid_uid_reasons, uid_defect
from .values import TEXT_VRS, Element, encodings_of, first_int, first_text, keyword_of, tag_text, text_values, vr_of

#: Our implementation identity written in the file meta (PS3.7 D.3.3.2).
IMPLEMENTATION_CLASS_UID = "2.25.241097133545716209813296766011339766521"
IMPLEMENTATION_VERSION_NAME = "EUCAIM_DEID_1"

OVERLAY_DATA = 0x3000
PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SOP_UID = 0x00080018

#: Free-text VRs that Clean Descriptors cleans (CS, AE, PN and the number/date VRs are handled apart).
_FREE_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
_FILE_META_REMOVED = (
    0x00020016,  # Source Application Entity Title
    0x00020017,  # Sending Application Entity Title
    0x00020018,  # Receiving Application Entity Title
    0x00020026,  # Source Presentation Address
    0x00020027,  # Sending Presentation Address
    0x00020028,  # Receiving Presentation Address
    0x00020031,  # RTV Meta Information Version
    0x00020032,  # RTV Communication SOP Class UID
    0x00020033,  # RTV Communication SOP Instance UID
    0x00020035,  # RTV Source Identifier
    0x00020036,  # RTV Flow Identifier
    0x00020037,  # RTV Flow RTP Sampling Rate
    0x00020038,  # RTV Flow Actual Frame Duration
    0x00020100,  # Private Information Creator UID
    0x00020102,  # Private Information
)


class _Quarantine(Exception):
    """Internal: stop processing one instance and quarantine it."""

    def __init__(self, *reasons: QuarantineReason) -> None:
        super().__init__(reasons[0].code if reasons else "quarantine")
        self.reasons = reasons


_QUIET_LOCK = threading.Lock()
_quiet_depth = 0
_saved_modes: tuple[int, int] | None = None


@contextmanager
def quiet_pydicom() -> Iterator[None]:
    """Switch off pydicom's value validation while the engine runs.

    Its warnings and log records quote element values, i.e. PHI. Thread-safe and
    re-entrant: the first caller in saves the settings, the last one out restores them.
    """
    global _quiet_depth, _saved_modes
    settings = pydicom_config.settings
    with _QUIET_LOCK:
        if _quiet_depth == 0:
            _saved_modes = (settings.reading_validation_mode, settings.writing_validation_mode)
            settings.reading_validation_mode = pydicom_config.IGNORE
            settings.writing_validation_mode = pydicom_config.IGNORE
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _saved_modes is not None:
                settings.reading_validation_mode, settings.writing_validation_mode = _saved_modes


@dataclass
class _Instance:
    """Per-instance state while de-identifying."""

    sop_class: str
    date_shift: int
    identity: IdentifyingValues
    encodings: list[str]
    #: values replaced because they could not be kept or shifted (released with the instance)
    replaced: list[QuarantineReason] = field(default_factory=list)


class Deidentifier:
    """Applies the PS3.15 Basic Application Level Confidentiality Profile with the
    options of `profile` (default: the node's EUCAIM profile), with pseudonyms keyed
    by `key` and patient pseudonyms under `site_prefix`.

    Instances are independent: the same input, key, prefix and profile always give
    the same output bytes, so a replay is idempotent.
    """

    def __init__(self, key: bytes, *, site_prefix: str, profile: Profile = EUCAIM_DEFAULT) -> None:
        check_key(key)
        pseudonymise_patient_id("probe", key, site_prefix)  # validates the prefix
        self._key = bytes(key)
        self.site_prefix = site_prefix
        self.profile = profile
        self.table: Table = load_table()
        self._option_keys = frozenset(o.value for o in profile.options)
        self._uids: dict[str, str] = {}
        self._actions: dict[tuple[int, str, str], tuple[str | None, Rule | None]] = {}
        self._safe_private = {(s.group, s.creator.strip(), s.element) for s in profile.safe_private}

    def __repr__(self) -> str:  # never show the key
        return f"Deidentifier(site_prefix={self.site_prefix!r}, profile={self.profile.name!r})"

    # -- public API ------------------------------------------------------------

    def deidentify(self, data: bytes) -> DeidResult:
        """De-identify one Part 10 instance (PS3.10 7.1); never raises on bad input."""
        with quiet_pydicom():
            try:
                ds = read_instance(data)
            except _Quarantine as q:
                return DeidResult(released=False, reasons=q.reasons)
            return self._run(ds)

    def deidentify_dataset(self, ds: Dataset) -> DeidResult:
        """De-identify a copy of `ds` (the caller's dataset is not modified)."""
        with quiet_pydicom():
            try:
                working = copy.deepcopy(ds)
                materialise(working)
            except Exception as exc:  # noqa: BLE001 - any parse failure is a quarantine
                return DeidResult(released=False, reasons=(_corrupt(exc),))
            return self._run(working)

    def pseudonymise_uid(self, uid: str) -> str:
        """`pseudonymise_uid` under this engine's key, cached; DICOM-defined UIDs unchanged."""
        value = normalise_uid(uid)
        if not value or value.startswith(DICOM_UID_ROOT):
            return value
        mapped = self._uids.get(value)
        if mapped is None:
            if len(self._uids) > 200_000:
                self._uids.clear()
            mapped = self._uids[value] = pseudonymise_uid(value, self._key)
        return mapped

    # -- one instance ------------------------------------------------------------

    def _run(self, ds: Dataset) -> DeidResult:
        try:
            return self._deidentify(ds)
        except _Quarantine as q:
            return DeidResult(released=False, reasons=q.reasons)
        except Exception as exc:  # noqa: BLE001 - never raise; never echo values
            return DeidResult(released=False, reasons=(_failure(exc),))

    def _deidentify(self, ds: Dataset) -> DeidResult:
        reason = assess_sop_class(ds)
        if reason:
            raise _Quarantine(reason)
        originals = _required_uids(ds)
        new_ids = {
            "study_instance_uid": self.pseudonymise_uid(originals[STUDY_UID]),
            "series_instance_uid": self.pseudonymise_uid(originals[SERIES_UID]),
            "sop_instance_uid": self.pseudonymise_uid(originals[SOP_UID]),
        }
        if self.profile.has(Option.RETAIN_UIDS):
            new_ids = {
                "study_instance_uid": originals[STUDY_UID],
                "series_instance_uid": originals[SERIES_UID],
                "sop_instance_uid": originals[SOP_UID],
            }
        _check_kept_uids(new_ids)
        patient_key = _patient_key(ds)
        pseudonym = pseudonymise_patient_id(patient_key, self._key, self.site_prefix)
        new_ids["patient_pseudonym"] = pseudonym
        sop_class = first_text(ds, 0x00080016)
        modality = first_text(ds, 0x00080060) or None
        extra = {"sop_class_uid": sop_class, "modality": modality}
        risks = assess_pixel_risk(ds, self.profile)
        if risks:
            return DeidResult(released=False, reasons=tuple(risks), **new_ids, **extra)

        # Judged before the walk: it reads image attributes only, and the engine never changes pixel data.
        native_complete = native_pixels_complete(ds)
        identity = collect_identifying_values(ds, self.profile, ignore=(self.site_prefix,))
        state = _Instance(
            sop_class=sop_class,
            date_shift=date_shift_days(patient_key, self._key),
            identity=identity,
            encodings=encodings_of(ds),
        )
        self._process_dataset(ds, state)
        self._set_patient(ds, pseudonym)
        record_methods(ds, self.profile, self.table.edition)
        self._rewrite_file_meta(ds, sop_class)

        reasons: list[QuarantineReason] = invalid_uid_reasons(ds)
        if not reasons and self.profile.phi_guard:
            reasons.extend(check_phi(ds, identity))
        if not reasons and self.profile.ocr:
            from .ocr import pixel_text_reasons  # optional dependency

            reasons.extend(pixel_text_reasons(ds))
        replaced = tuple(state.replaced)
        if reasons:
            return DeidResult(released=False, reasons=tuple(reasons), replaced=replaced, **new_ids, **extra)
        return DeidResult(
            released=True,
            data=write_instance(ds),
            dataset=ds,
            replaced=replaced,
            native_pixels_complete=native_complete,
            **new_ids,
            **extra,
        )

    # -- the walk ------------------------------------------------------------------

    def _process_dataset(self, ds: Dataset, state: _Instance, parent: str = "") -> None:
        """Apply Table E.1-1 to every element of `ds`, recursing into sequences.

        Elements whose value does not change stay raw (unconverted), so they are
        written back byte for byte.
        """
        private_tags: list[BaseTag] = []
        removed_overlays: set[int] = set()
        for elem in list(ds.elements()):
            tag = elem.tag
            if tag.group & 1:
                private_tags.append(tag)
                continue
            if tag.group in (0x0000, 0x0002) or tag.element == 0x0000:
                del ds[tag]  # command set, misplaced file meta, group lengths (PS3.5 7.2)
                continue
            action, rule = self._action_for(tag, state.sop_class, parent)
            vr = vr_of(elem)
            if action == "C" and _is_graphic_bitmap(tag, vr):
                action = "X"  # Clean Graphics: a bitmap cannot be cleaned of text here, so it goes
            if vr in TEMPORAL_VRS and action in (None, "K", "C"):
                action = self._temporal(ds, elem, vr, action, rule, state, parent)
            if action == "X" and tag.group & 0xFF00 == 0x6000 and tag.element == OVERLAY_DATA:
                removed_overlays.add(tag.group)
            self._apply(ds, elem, vr, action, state)
        for group in removed_overlays:  # an overlay without its data is not conformant
            for tag in [t for t in ds.keys() if t.group == group]:
                del ds[tag]
        if private_tags:
            self._process_private(ds, private_tags, state)

    def _action_for(self, tag: BaseTag, sop_class: str, parent: str) -> tuple[str | None, Rule | None]:
        """The resolved single action for `tag` inside `parent` (a sequence keyword, "" at top
        level) in this SOP class, or None if the tag is not in the table."""
        key = (int(tag), sop_class, parent)
        cached = self._actions.get(key)
        if cached is not None:
            return cached
        rule = self.table.rule_for(int(tag))
        action = None
        if rule is not None:
            action = choose_action(rule.basic, rule.options, self._option_keys)
            action = compound.resolve_compound(action, int(tag), sop_class, parent)
        self._actions[key] = (action, rule)
        return action, rule

    def _temporal(
        self, ds: Dataset, elem: Element, vr: str, action: str | None, rule: Rule | None, state: _Instance, parent: str
    ) -> str | None:
        """A DA, DT or TM value the action keeps (K, or not in the table) or cleans (C).

        Every value must parse completely (PS3.5 §6.2, :mod:`.dates`); DA and DT are shifted under
        C, and under Modified Dates when not in the table (PS3.15 E.3.6); TM and kept values stay as
        they are. If any value fails, the element gets the Basic Profile action of its row instead
        (always X, Z or D for temporal rows, compound codes resolved for this IOD; Z for an
        attribute outside the table) and the reason is recorded, never the value. Returns the
        action still to apply ("K" once handled here).
        """
        values = text_values(elem, state.encodings)
        if not values:
            return "K"
        shift = vr != "TM" and (
            action == "C" or (action is None and self.profile.has(Option.RETAIN_LONGITUDINAL_MODIFIED_DATES))
        )
        if shift:
            shifted = dates.shift_values(values, vr, state.date_shift)
            if shifted is not None:
                _set(ds, elem.tag, vr, shifted)
                return "K"
        elif all(dates.is_valid(vr, v) for v in values):
            return "K"
        fallback = "Z"
        if rule is not None:
            fallback = compound.resolve_compound(rule.basic, int(elem.tag), state.sop_class, parent)
        valid = all(dates.is_valid(vr, v) for v in values)
        state.replaced.append(
            QuarantineReason(
                code="unshiftable-date" if valid else "malformed-temporal",
                message=(
                    f"{vr} value holds no full date to shift" if valid
                    else f"{vr} value is not a complete, valid {vr} (PS3.5 6.2)"
                ) + f"; replaced per action {fallback} (value withheld)",
                tag=tag_text(int(elem.tag)),
                keyword=(parent + "." if parent else "") + keyword_of(int(elem.tag)),
                rule=f"temporal:{fallback}",
            )
        )
        return fallback

    def _apply(self, ds: Dataset, elem: Element, vr: str, action: str | None, state: _Instance) -> None:
        """Apply one resolved action (PS3.15 Table E.1-1 action codes) to `elem`."""
        if action == "X":
            del ds[elem.tag]
        elif action == "Z":
            _set(ds, elem.tag, vr, Sequence() if vr == "SQ" else None)
        elif action is None or action == "K":
            self._keep(ds, elem, vr, state, generic=action is None)
        elif action == "D":
            self._dummy(ds, elem, vr, state)
        elif action == "C":
            self._clean(ds, elem, vr, state)
        elif action == "U":
            self._replace_uids(ds, elem, vr, state)
        else:  # an action code this engine does not know: the safe choice
            del ds[elem.tag]

    def _keep(self, ds: Dataset, elem: Element, vr: str, state: _Instance, *, generic: bool) -> None:
        """K, or an element not in the table: keep, but recurse and remap instance UIDs."""
        if vr == "SQ":
            self._process_sequence(ds[elem.tag], state)
        elif not generic:
            return
        elif vr == "UI":
            if int(elem.tag) not in DEFINITIONAL_UID_TAGS:
                self._replace_uids(ds, elem, vr, state)
        elif vr in _FREE_TEXT_VRS and self.profile.has(Option.CLEAN_DESCRIPTORS):
            self._scrub_identity(ds, elem, vr, state)

    def _scrub_identity(self, ds: Dataset, elem: Element, vr: str, state: _Instance) -> None:
        """Free text outside Table E.1-1 (e.g. SegmentLabel) loses the input's identifying
        values under Clean Descriptors; the rest of the text is kept."""
        values = text_values(elem, state.encodings)
        if values:
            scrubbed = [state.identity.scrub(v) for v in values]
            if scrubbed != values:
                _set(ds, elem.tag, vr, scrubbed)

    def _dummy(self, ds: Dataset, elem: Element, vr: str, state: _Instance) -> None:
        """D: a non-zero-length dummy consistent with the VR."""
        if vr == "SQ":
            self._process_sequence(ds[elem.tag], state)
        elif vr == "UI":
            self._replace_uids(ds, elem, vr, state)
        elif vr == "PN":
            _set(ds, elem.tag, vr, DUMMY_PERSON)
        else:
            _set(ds, elem.tag, vr, dummy_for(vr))

    def _clean(self, ds: Dataset, elem: Element, vr: str, state: _Instance) -> None:
        """C: replace with values of similar meaning known not to identify."""
        if vr == "SQ":
            self._process_sequence(ds[elem.tag], state)
        elif vr in _FREE_TEXT_VRS:
            values = text_values(elem, state.encodings)
            cleaned = [clean_text(v, state.identity, vr) for v in values]
            if cleaned != values:
                _set(ds, elem.tag, vr, cleaned)
        elif vr == "UI":
            self._replace_uids(ds, elem, vr, state)
        elif vr == "CS":
            if any(state.identity.find(v) for v in text_values(elem, state.encodings)):
                _set(ds, elem.tag, vr, dummy_for("CS"))
        elif vr in ("PN", "AE"):
            _set(ds, elem.tag, vr, dummy_for(vr))
        # numbers, AS, binary: kept (the option columns keep them meaningful)

    def _replace_uids(self, ds: Dataset, elem: Element, vr: str, state: _Instance) -> None:
        """U: replace each UID with its keyed pseudonym (``Retain UIDs`` keeps them)."""
        if vr == "SQ":
            self._process_sequence(ds[elem.tag], state)
        elif self.profile.has(Option.RETAIN_UIDS):
            return
        elif vr not in ("UI", "LO", "SH"):  # U on another VR: a dummy
            _set(ds, elem.tag, vr, b"" if vr in ("UN", "OB") else dummy_for(vr))
        else:
            values = text_values(elem, state.encodings)
            if values:
                mapped = [self.pseudonymise_uid(v) for v in values]
                if mapped != values:
                    _set(ds, elem.tag, vr, mapped)

    def _process_sequence(self, elem: DataElement, state: _Instance) -> None:
        """Apply the table inside every item, dropping SR content items whose rule is X."""
        parent = keyword_of(int(elem.tag))
        kept = []
        for item in elem.value or ():
            if structured.is_content_item(item):
                if not structured.clean_content_item(item, self.table.content, self._option_keys, state.identity):
                    continue  # Table E.3.4-1 says remove this content item
            self._process_dataset(item, state, parent)
            kept.append(item)
        if len(kept) != len(elem.value or ()):
            elem.value = Sequence(kept)

    def _process_private(self, ds: Dataset, tags: list[BaseTag], state: _Instance) -> None:
        """Private attributes: X, or keep the safe-list under Retain Safe Private (E.3.10)."""
        retain = self.profile.has(Option.RETAIN_SAFE_PRIVATE)
        kept_blocks: set[tuple[int, int]] = set()
        creators: list[BaseTag] = []
        for tag in tags:
            if 0x0010 <= tag.element <= 0x00FF:
                creators.append(tag)
                continue
            if retain and tag.element >= 0x1000 and self._is_safe_private(ds, tag):
                kept_blocks.add((tag.group, tag.element >> 8))
                elem = ds[tag]
                vr = vr_of(elem)
                if vr == "SQ":
                    self._process_sequence(elem, state)
                elif vr in TEMPORAL_VRS:  # the file sets the VR: a date here is checked and shifted as anywhere
                    self._apply(ds, elem, vr, self._temporal(ds, elem, vr, None, None, state, ""), state)
                continue
            del ds[tag]
        for tag in creators:
            if (tag.group, tag.element) not in kept_blocks:
                del ds[tag]

    def _is_safe_private(self, ds: Dataset, tag: BaseTag) -> bool:
        creator_tag = Tag(tag.group, tag.element >> 8)
        if creator_tag not in ds:
            return False
        creator = str(ds[creator_tag].value or "").strip()
        return (tag.group, creator, tag.element & 0xFF) in self._safe_private

    # -- top-level attributes --------------------------------------------------------

    def _set_patient(self, ds: Dataset, pseudonym: str) -> None:
        """PatientID → site pseudonym (Z/D resolved to a consistent D); PatientName per profile."""
        _set(ds, Tag(PATIENT_ID), "LO", pseudonym)
        _set(ds, Tag(PATIENT_NAME), "PN", pseudonym if self.profile.patient_name == "pseudonym" else None)

    def _rewrite_file_meta(self, ds: Dataset, sop_class: str) -> None:
        """File meta (PS3.10 7.1): new instance UID, our implementation identity, no AE titles."""
        meta = getattr(ds, "file_meta", None)
        if meta is None:
            meta = FileMetaDataset()
            ds.file_meta = meta
        for tag in _FILE_META_REMOVED:
            if tag in meta:
                del meta[tag]
        if 0x00020002 not in meta:
            meta.add_new(0x00020002, "UI", sop_class)  # Media Storage SOP Class UID
        meta.add_new(0x00020003, "UI", first_text(ds, SOP_UID))  # Media Storage SOP Instance UID
        meta.add_new(0x00020012, "UI", IMPLEMENTATION_CLASS_UID)
        meta.add_new(0x00020013, "SH", IMPLEMENTATION_VERSION_NAME)
        if 0x00020010 not in meta:
            meta.add_new(0x00020010, "UI", pydicom.uid.ExplicitVRLittleEndian)
        ds.preamble = b"\x00" * 128  # the preamble may carry a TIFF header or other data


# -- reading and writing --------------------------------------------------------------


def read_instance(data: bytes) -> Dataset:
    """Parse Part 10 bytes (element headers now, values lazily); raise `_Quarantine` for
    non-DICOM input, an empty or meta-less file, truncated values or pixel data."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _Quarantine(
            QuarantineReason(code="not-dicom", message="input is not bytes", rule="parse")
        )
    raw = bytes(data)
    if len(raw) < 132 or raw[128:132] != b"DICM":
        raise _Quarantine(
            QuarantineReason(
                code="not-dicom",
                message="no DICOM Part 10 preamble and 'DICM' prefix (PS3.10 7.1)",
                rule="parse",
            )
        )
    try:
        ds = pydicom.dcmread(io.BytesIO(raw))
        _check_structure(ds)
        _check_pixel_length(ds)
    except InvalidDicomError:
        raise _Quarantine(
            QuarantineReason(code="not-dicom", message="not a DICOM Part 10 file", rule="parse")
        ) from None
    except _Quarantine:
        raise
    except Exception as exc:  # noqa: BLE001
        raise _Quarantine(_corrupt(exc)) from None
    return ds


def materialise(ds: Dataset) -> None:
    """Convert every raw element at every depth now, so parse errors surface here."""
    for _ in ds.iterall():
        pass
    if ds.get("file_meta") is not None:
        for _ in ds.file_meta.iterall():
            pass


def _check_structure(ds: Dataset) -> None:
    """A Part 10 file needs a Transfer Syntax UID (PS3.10 7.1) and a non-empty dataset,
    and no element may hold fewer bytes than its Value Length says (a truncated file)."""
    if not ds.file_meta.get("TransferSyntaxUID") or len(ds) == 0:
        raise _Quarantine(
            QuarantineReason(
                code="corrupt",
                message="file meta without Transfer Syntax UID, or an empty dataset",
                rule="parse",
            )
        )
    for elem in ds.elements():
        if not elem.is_raw or elem.length == 0xFFFFFFFF or elem.value is None:
            continue
        if len(elem.value) < elem.length:
            raise _Quarantine(
                QuarantineReason(
                    code="corrupt",
                    message=f"value truncated: {len(elem.value)} of {elem.length} bytes",
                    tag=tag_text(int(elem.tag)),
                    keyword=keyword_of(int(elem.tag)),
                    rule="parse",
                )
            )


def _check_pixel_length(ds: Dataset) -> None:
    """Native pixel data shorter than Rows x Columns x Samples x Bits x Frames is truncated."""
    if "PixelData" not in ds or ds.file_meta.get("TransferSyntaxUID") is None:
        return
    if pydicom.uid.UID(ds.file_meta.TransferSyntaxUID).is_compressed:
        return
    rows, columns = first_int(ds, 0x00280010), first_int(ds, 0x00280011)
    samples, bits = first_int(ds, 0x00280002), first_int(ds, 0x00280100)
    frames = first_int(ds, 0x00280008) or 1
    if None in (rows, columns, samples, bits):
        return
    expected = native_pixel_data_length(rows, columns, samples, bits, frames)
    actual = len(ds.get_item(0x7FE00010).value or b"")
    if actual < expected:
        raise _Quarantine(
            QuarantineReason(
                code="corrupt",
                message=f"pixel data truncated: {actual} of {expected} bytes",
                tag="(7FE0,0010)",
                keyword="PixelData",
                rule="parse",
            )
        )


def write_instance(ds: Dataset) -> bytes:
    """Encode `ds` as Part 10 in its original transfer syntax (pixel data untouched)."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _failure(exc: Exception) -> QuarantineReason:
    """An exception while processing: raised inside pydicom, it is the data (``corrupt``: an
    unknown VR, a value that cannot be encoded); raised in this package, it is a bug."""
    frames = traceback.extract_tb(exc.__traceback__)
    in_pydicom = bool(frames) and f"{os.sep}pydicom{os.sep}" in frames[-1].filename
    if in_pydicom:
        return QuarantineReason(
            code="corrupt",
            message=f"could not be decoded or re-encoded ({type(exc).__name__} in pydicom)",
            rule="parse",
        )
    return QuarantineReason(
        code="internal-error",
        message=f"engine error {type(exc).__name__}; instance not released",
        rule="engine",
    )


def _corrupt(exc: Exception) -> QuarantineReason:
    return QuarantineReason(
        code="corrupt",
        message=f"could not be parsed ({type(exc).__name__})",
        rule="parse",
    )


def _required_uids(ds: Dataset) -> dict[int, str]:
    found: dict[int, str] = {}
    for tag, keyword in ((STUDY_UID, "StudyInstanceUID"), (SERIES_UID, "SeriesInstanceUID"), (SOP_UID, "SOPInstanceUID")):
        value = normalise_uid(first_text(ds, tag))
        if not value:
            raise _Quarantine(
                QuarantineReason(
                    code="corrupt",
                    message=f"{keyword} is missing or empty",
                    tag=f"({tag >> 16:04X},{tag & 0xFFFF:04X})",
                    keyword=keyword,
                    rule="required-uid",
                )
            )
        found[tag] = value
    return found


def _check_kept_uids(new_ids: dict[str, str]) -> None:
    """Study, Series and SOP Instance UID name output paths: a kept one (under the DICOM root, or
    with Retain UIDs) must be a valid UID (PS3.5 §9.1), else the instance is quarantined."""
    for field_name, tag, keyword in (
        ("study_instance_uid", STUDY_UID, "StudyInstanceUID"),
        ("series_instance_uid", SERIES_UID, "SeriesInstanceUID"),
        ("sop_instance_uid", SOP_UID, "SOPInstanceUID"),
    ):
        defect = uid_defect(new_ids[field_name])
        if defect:
            raise _Quarantine(invalid_uid_reason(tag, keyword, defect))


def _patient_key(ds: Dataset) -> str:
    """What identifies the patient for pseudonyms and date shifts.

    PatientID (so the engine agrees with :func:`pseudonymise_patient_id`); without
    an ID, the name and birth date; without either, the study (then no cross-study
    link can be made).
    """
    encodings = encodings_of(ds)
    patient_id = first_text(ds, PATIENT_ID, encodings)
    if patient_id:
        return patient_id
    name = first_text(ds, PATIENT_NAME, encodings)
    birth = first_text(ds, 0x00100030)
    if name:
        return f"name:{name}|{birth}"
    return "study:" + normalise_uid(first_text(ds, STUDY_UID))


def _is_graphic_bitmap(tag: BaseTag, vr: str) -> bool:
    """Overlay data (60xx,3000) or curve data (50xx,eeee) held as binary (PS3.3 C.9.2, retired C.10)."""
    group = tag.group & 0xFF00
    binary = vr not in TEXT_VRS
    return binary and ((group == 0x6000 and tag.element == OVERLAY_DATA) or group == 0x5000)


def _set(ds: Dataset, tag: BaseTag, vr: str, value: object) -> None:
    """Replace the element at `tag` with a new one holding `value` (a list → multi-valued).

    ASCII text is stored already encoded (PS3.5 6.2: backslash-separated, padded to
    even length), as pydicom stores what it reads, so it is written without re-encoding.
    """
    vr = vr.split(" or ")[0]
    raw = _encoded_text(ds, tag, vr, value)
    if raw is not None:
        ds[tag] = raw
        return
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else (value or None)
    ds[tag] = DataElement(tag, vr, value)


def _encoded_text(ds: Dataset, tag: BaseTag, vr: str, value: object) -> RawDataElement | None:
    implicit, little = ds.original_encoding
    if implicit is None or little is None or vr not in TEXT_VRS:
        return None
    if value is None:
        values: list[str] = []
    elif isinstance(value, str):
        values = [value]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        values = value
    else:
        return None
    text = "\\".join(values)
    if not text.isascii():
        return None  # pydicom encodes other characters with the Specific Character Set
    data = text.encode("ascii")
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return RawDataElement(Tag(tag), vr, len(data), data, 0, implicit, little, True, False)
