"""The options of the Basic Application Level Confidentiality Profile (PS3.15 E.3)
and the node's named profiles built from them."""

from __future__ import annotations

import enum
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path


class Option(enum.StrEnum):
    """The ten options of PS3.15 Table E.1-1 (columns after *Basic Profile*).

    Values are the column keys used in the generated table data file.
    """

    RETAIN_SAFE_PRIVATE = "retain_safe_private"  # E.3.10
    RETAIN_UIDS = "retain_uids"  # E.3.9
    RETAIN_DEVICE_IDENTITY = "retain_device_identity"  # E.3.8
    RETAIN_INSTITUTION_IDENTITY = "retain_institution_identity"  # E.3.11
    RETAIN_PATIENT_CHARACTERISTICS = "retain_patient_characteristics"  # E.3.7
    RETAIN_LONGITUDINAL_FULL_DATES = "retain_longitudinal_full_dates"  # E.3.6
    RETAIN_LONGITUDINAL_MODIFIED_DATES = "retain_longitudinal_modified_dates"  # E.3.6
    CLEAN_DESCRIPTORS = "clean_descriptors"  # E.3.5
    CLEAN_STRUCTURED_CONTENT = "clean_structured_content"  # E.3.4
    CLEAN_GRAPHICS = "clean_graphics"  # E.3.3

    @property
    def cli_name(self) -> str:
        """The option as written on the command line, e.g. ``retain-uids``."""
        return self.value.replace("_", "-")

    @classmethod
    def parse(cls, text: str) -> Option:
        """Accept ``retain-uids``, ``retain_uids`` or ``RETAIN_UIDS``."""
        key = text.strip().lower().replace("-", "_")
        try:
            return cls(key)
        except ValueError:
            names = ", ".join(o.cli_name for o in cls)
            raise ValueError(f"unknown option {text!r}; choose from: {names}") from None


@dataclass(frozen=True)
class SafePrivate:
    """One private element kept by *Retain Safe Private* (PS3.15 E.3.10).

    Identified by its private creator and the element byte (``0x00``-``0xFF``)
    within the creator's block, in an odd `group`.
    """

    group: int
    creator: str
    element: int


@dataclass(frozen=True)
class AllowRule:
    """Lets an instance through the burned-in / high-risk quarantine.

    A rule matches when every field that is set matches the instance: the SOP
    Class UID, the Modality, and (when `manufacturer` is set) a case-insensitive
    substring of Manufacturer. `burned_in_annotation_yes` must be true for the
    rule to release instances with BurnedInAnnotation = YES.
    """

    sop_class_uid: str | None = None
    modality: str | None = None
    manufacturer: str | None = None
    burned_in_annotation_yes: bool = False


#: A small, documented safe-list (PS3.15 E.3.10 and Table E.3.10-1 examples):
#: private attributes that carry acquisition physics, never identity.
DEFAULT_SAFE_PRIVATE: tuple[SafePrivate, ...] = (
    SafePrivate(0x0019, "GEMS_ACQU_01", 0x9E),  # internal pulse sequence name
    SafePrivate(0x0043, "GEMS_PARM_01", 0x27),  # scan pitch ratio
    SafePrivate(0x0043, "GEMS_PARM_01", 0x39),  # slop integers (b-value)
    SafePrivate(0x0019, "SIEMENS MR HEADER", 0x0C),  # B value
    SafePrivate(0x0019, "SIEMENS MR HEADER", 0x0D),  # diffusion directionality
    SafePrivate(0x0019, "SIEMENS MR HEADER", 0x0E),  # diffusion gradient direction
    SafePrivate(0x0019, "SIEMENS MR HEADER", 0x27),  # B matrix
    SafePrivate(0x0029, "SIEMENS CSA HEADER", 0x08),  # CSA image header type
    SafePrivate(0x2001, "Philips Imaging DD 001", 0x03),  # diffusion b-factor
    SafePrivate(0x2005, "Philips MR Imaging DD 001", 0xB0),  # diffusion direction RL
    SafePrivate(0x2005, "Philips MR Imaging DD 001", 0xB1),  # diffusion direction AP
    SafePrivate(0x2005, "Philips MR Imaging DD 001", 0xB2),  # diffusion direction FH
)

_EXCLUSIVE = (Option.RETAIN_LONGITUDINAL_FULL_DATES, Option.RETAIN_LONGITUDINAL_MODIFIED_DATES)


@dataclass(frozen=True)
class Profile:
    """What the engine does: the options of PS3.15 E.3 plus the node's policies.

    `options`: the Table E.1-1 options applied on top of the Basic Profile.
    `safe_private`: the safe-list used when Retain Safe Private is selected.
    `allow`: rules that let burned-in / high-risk instances through.
    `quarantine_high_risk`: quarantine US, SC, photographs and encapsulated documents
    (PS3.15 E.3.1 notes on burned-in text) unless an allow rule matches.
    `phi_guard`: check the output for identifying values from the input (recommended).
    `patient_name`: ``"pseudonym"`` (PatientName = patient pseudonym) or ``"empty"``.
    `ocr`: run optional OCR on pixel data of images that are otherwise released.
    """

    name: str = "eucaim"
    options: frozenset[Option] = field(default_factory=frozenset)
    safe_private: tuple[SafePrivate, ...] = DEFAULT_SAFE_PRIVATE
    allow: tuple[AllowRule, ...] = ()
    quarantine_high_risk: bool = True
    phi_guard: bool = True
    patient_name: str = "pseudonym"
    ocr: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", frozenset(Option(o) for o in self.options))
        if all(o in self.options for o in _EXCLUSIVE):
            raise ValueError(
                "Retain Longitudinal Full Dates and Retain Longitudinal Modified Dates "
                "are mutually exclusive (PS3.15 E.3.6)"
            )
        if self.patient_name not in ("pseudonym", "empty"):
            raise ValueError("patient_name must be 'pseudonym' or 'empty'")

    def has(self, option: Option) -> bool:
        """True if `option` is selected."""
        return option in self.options

    def with_options(self, *options: Option | str) -> Profile:
        """A copy with `options` added (a dates option replaces the other one)."""
        added = {Option.parse(o) if isinstance(o, str) else o for o in options}
        current = set(self.options)
        if added & set(_EXCLUSIVE):
            current -= set(_EXCLUSIVE)
        return replace(self, options=frozenset(current | added))


#: Alias kept for callers that think of the profile as "the de-identification options".
DeidOptions = Profile

BASIC = Profile(name="basic", options=frozenset())

#: The node's default for EUCAIM: Basic + Retain Longitudinal Modified Dates +
#: Retain Patient Characteristics + Clean Descriptors.
EUCAIM_DEFAULT = Profile(
    name="eucaim",
    options=frozenset(
        {
            Option.RETAIN_LONGITUDINAL_MODIFIED_DATES,
            Option.RETAIN_PATIENT_CHARACTERISTICS,
            Option.CLEAN_DESCRIPTORS,
        }
    ),
)

PROFILES: dict[str, Profile] = {"eucaim": EUCAIM_DEFAULT, "basic": BASIC}


def profile_named(name: str, extra_options: tuple[str, ...] = ()) -> Profile:
    """Return the named profile (``eucaim``, ``basic``, or the path of a profile TOML file,
    see :func:`load_profile`) with `extra_options` added."""
    key = name.strip()
    if key.lower() in PROFILES:
        profile = PROFILES[key.lower()]
    elif key.endswith(".toml") or Path(key).is_file():
        profile = load_profile(key)
    else:
        raise ValueError(
            f"unknown profile {name!r}; choose from: {', '.join(PROFILES)}, or a profile .toml file"
        )
    return profile.with_options(*extra_options) if extra_options else profile


_PROFILE_KEYS = {"base", "name", "options", "allow", "safe_private", "quarantine_high_risk",
                 "phi_guard", "patient_name", "ocr"}


def load_profile(path: str | Path) -> Profile:
    """Read a profile from TOML: a base profile plus options, allow rules and a safe-list.

    ::

        base = "eucaim"                      # or "basic"
        name = "eucaim-with-us"
        options = ["retain-safe-private"]
        [[allow]]                            # AllowRule fields
        sop_class_uid = "1.2.840.10008.5.1.4.1.1.6.1"
        manufacturer = "ACME"
        [[safe_private]]                     # replaces the default safe-list when present
        group = 0x0019
        creator = "SIEMENS MR HEADER"
        element = 0x0C

    Raises ValueError with the problem (never a value from a dataset).
    """
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"profile file unreadable: {file} ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"profile file {file} is not valid TOML: {exc}") from None
    unknown = set(data) - _PROFILE_KEYS
    if unknown:
        raise ValueError(f"profile file {file}: unknown keys {sorted(unknown)}")
    base = PROFILES.get(str(data.get("base", "eucaim")).lower())
    if base is None:
        raise ValueError(f"profile file {file}: base must be one of {', '.join(PROFILES)}")
    try:
        allow = tuple(AllowRule(**rule) for rule in data.get("allow", []))
        safe = (
            tuple(SafePrivate(**entry) for entry in data["safe_private"])
            if "safe_private" in data
            else base.safe_private
        )
    except TypeError as exc:
        raise ValueError(f"profile file {file}: {exc}") from None
    profile = replace(
        base,
        name=str(data.get("name", file.stem)),
        allow=allow,
        safe_private=safe,
        quarantine_high_risk=bool(data.get("quarantine_high_risk", base.quarantine_high_risk)),
        phi_guard=bool(data.get("phi_guard", base.phi_guard)),
        patient_name=str(data.get("patient_name", base.patient_name)),
        ocr=bool(data.get("ocr", base.ocr)),
    )
    return profile.with_options(*data.get("options", []))
