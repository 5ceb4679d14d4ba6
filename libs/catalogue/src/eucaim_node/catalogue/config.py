"""The node's collections file: which studies form which EUCAIM dataset, and how each is described.

A YAML file (``EUCAIM_COLLECTIONS_FILE``) read by metadata (the rules), catalogue-sync (the
metadata it publishes) and the CLI. Every collection inherits ``defaults`` (publisher, contact
point, health data access body, legislation, …) and may override any of it. Unmatched studies
go to the default collection (``EUCAIM_DEFAULT_COLLECTION``), which must be described here too.

Rules are evaluated in file order; the first collection with a matching rule wins. Within one
rule every criterion given must hold (AND); a list inside a criterion means any of its values
(OR). See ``collections.example.yaml`` beside this module and ``docs/federation.md``.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

COLLECTION_ID = r"^[a-z0-9][a-z0-9-]{0,62}$"
SNOMED_TOKEN = r"^SNOMEDCT\d{6,18}$"
ACCESS_RIGHTS = Literal["NON_PUBLIC", "RESTRICTED", "PUBLIC"]


class ConfigError(ValueError):
    """The collections file is missing, unreadable or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Agent(_Strict):
    """A publisher, health data access body or custodian (foaf:Agent with a cv:ContactPoint)."""

    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    url: str | None = Field(default=None, pattern=r"^https?://")
    #: Optional HealthDCAT-AP publisher-type code (e.g. ``non-gov-org``, ``national-authority``).
    type: str | None = Field(default=None, pattern=r"^[a-z][a-z-]{1,63}$")


class Contact(_Strict):
    """A dataset contact point (vcard:Kind): an email, a web page, or both."""

    name: str = Field(min_length=1)
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    url: str | None = Field(default=None, pattern=r"^https?://")

    @model_validator(mode="after")
    def _reachable(self) -> Contact:
        if not self.email and not self.url:
            raise ValueError("a contact point needs an email or a url")
        return self


def _normalised_values(values: tuple[str, ...]) -> tuple[str, ...]:
    """Rule values as they are compared (:func:`normalise_text`); an empty one is an error."""
    cleaned = tuple(normalise_text(v) for v in values)
    if any(not v for v in cleaned):
        raise ValueError("empty value")
    return cleaned


class Condition(_Strict):
    code: str = Field(pattern=SNOMED_TOKEN, description="SNOMED CT concept as the federation sends it, e.g. SNOMEDCT363358000.")
    label: str = Field(min_length=1)


class Rule(_Strict):
    """All given criteria must hold. Values compare case-insensitively; keywords as whole words."""

    calling_aets: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    body_parts: tuple[str, ...] = ()
    description_keywords: tuple[str, ...] = ()

    _upper = field_validator("calling_aets", "modalities", "body_parts", "description_keywords")(
        lambda values: _normalised_values(values))

    @model_validator(mode="after")
    def _not_empty(self) -> Rule:
        if not (self.calling_aets or self.modalities or self.body_parts or self.description_keywords):
            raise ValueError("a rule needs at least one criterion (calling_aets, modalities, body_parts, description_keywords)")
        return self


Programme = Literal["organised-screening", "opportunistic-screening", "diagnostic", "unknown"]
CancerType = Literal["breast", "lung", "prostate", "other"]


class ScreeningRule(_Strict):
    """Sets a study's programme and/or cancer type when every criterion given holds (lists: any value).

    ``departments`` are InstitutionalDepartmentName (0008,1040) of the clinical instance (de-identification removes
    it; anonymisation hands it over); ``procedure_codes`` are ``SCHEME:VALUE`` (``LN:24606-6``) or a bare code value,
    from Procedure Code Sequence (0008,1032) and Requested Procedure Code Sequence (0032,1064), top level or inside
    Request Attributes Sequence (0040,0275)."""

    programme: Programme | None = None
    cancer_type: CancerType | None = None
    calling_aets: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    procedure_codes: tuple[str, ...] = ()
    description_keywords: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()

    _upper = field_validator("calling_aets", "departments", "description_keywords", "modalities")(
        lambda values: _normalised_values(values))

    @field_validator("procedure_codes")
    @classmethod
    def _codes(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(v.strip().upper() for v in values)
        if any(not v or len(v) > 80 for v in cleaned):
            raise ValueError("a procedure code is SCHEME:VALUE or VALUE, 1 to 80 characters")
        return cleaned

    @model_validator(mode="after")
    def _complete(self) -> ScreeningRule:
        if self.programme is None and self.cancer_type is None:
            raise ValueError("a screening rule sets programme, cancer_type or both")
        if not (self.calling_aets or self.departments or self.procedure_codes or self.description_keywords
                or self.modalities):
            raise ValueError("a screening rule needs at least one criterion (calling_aets, departments, "
                             "procedure_codes, description_keywords, modalities)")
        return self


class ScreeningConfig(_Strict):
    """How each study's screening context is found (libs/catalogue screening.py; docs/federation.md)."""

    rules: tuple[ScreeningRule, ...] = ()
    #: What image evidence of screening (screening procedure codes, the four standard mammography views) means when
    #: no rule names the programme: screening not attributed to the organised programme is opportunistic.
    image_screening_programme: Literal["organised-screening", "opportunistic-screening"] = "opportunistic-screening"


class ConceptRef(_Strict):
    """A concept named by its IRI, published with its label (e.g. a EUCAIM hyper-ontology class)."""

    iri: str = Field(pattern=r"^https?://\S+$")
    label: str = Field(min_length=1)


class Describable(_Strict):
    """What every collection inherits from ``defaults`` and may override."""

    publisher: Agent | None = None
    hdab: Agent | None = None
    contact_point: Contact | None = None
    access_rights: ACCESS_RIGHTS | None = None
    #: ELI IRIs of the applicable legislation (EHDS: http://data.europa.eu/eli/reg/2025/327/oj).
    applicable_legislation: tuple[str, ...] | None = None
    legal_basis: str | None = None
    keywords: tuple[str, ...] | None = None
    provenance: str | None = None
    #: EHDS Art. 51 health categories (HealthDCAT-AP vocabulary codes, e.g. IDHE for imaging data).
    health_categories: tuple[str, ...] | None = None
    language: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    country: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    #: Where a researcher applies for access (the distribution's access URL).
    access_url: str | None = Field(default=None, pattern=r"^https?://")
    #: EUCAIM DCAT-AP v2 ``eucaim:interoperabilityLevel`` (mandatory there): the tier concept of the EUCAIM
    #: hyper-ontology (a subclass of SPEC1000008), as the node's data steward was given it. Not guessed: unset,
    #: it is not published (HealthDCAT-AP does not require it).
    interoperability_level: ConceptRef | None = None


class Collection(Describable):
    id: str = Field(pattern=COLLECTION_ID)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    condition: Condition | None = None
    rules: tuple[Rule, ...] = ()


class Catalogue(_Strict):
    base_uri: str = Field(pattern=r"^https?://[^\s?#]+$", description="IRIs of the published resources start here.")
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    homepage: str | None = Field(default=None, pattern=r"^https?://")


class CollectionsConfig(_Strict):
    catalogue: Catalogue
    defaults: Describable = Describable()
    collections: tuple[Collection, ...]
    screening: ScreeningConfig = ScreeningConfig()

    @model_validator(mode="after")
    def _unique(self) -> CollectionsConfig:
        ids = [c.id for c in self.collections]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"collection ids must be unique: {', '.join(duplicates)}")
        return self

    def collection(self, collection_id: str) -> Collection | None:
        return next((c for c in self.collections if c.id == collection_id), None)

    def resolved(self, collection_id: str) -> ResolvedCollection:
        """The collection with every unset field taken from ``defaults``."""
        collection = self.collection(collection_id)
        if collection is None:
            raise KeyError(collection_id)
        merged = {name: getattr(collection, name) if getattr(collection, name) is not None else getattr(self.defaults, name)
                  for name in Describable.model_fields}
        return ResolvedCollection(id=collection.id, title=collection.title, description=collection.description,
                                  condition=collection.condition, **merged)

    def require_default(self, default_collection: str) -> None:
        if self.collection(default_collection) is None:
            raise ConfigError(f"the default collection {default_collection!r} (EUCAIM_DEFAULT_COLLECTION) "
                              f"is not described in the collections file")


class ResolvedCollection(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    description: str
    condition: Condition | None
    publisher: Agent | None
    hdab: Agent | None
    contact_point: Contact | None
    access_rights: ACCESS_RIGHTS | None
    applicable_legislation: tuple[str, ...] | None
    legal_basis: str | None
    keywords: tuple[str, ...] | None
    provenance: str | None
    health_categories: tuple[str, ...] | None
    language: str | None
    country: str | None
    access_url: str | None
    interoperability_level: ConceptRef | None


_NON_WORD = re.compile(r"[^A-Z0-9]+")


def normalise_text(value: object) -> str:
    """Upper case, every run of non-alphanumerics one space: ``"Low-dose  chest"`` → ``"LOW DOSE CHEST"``."""
    return _NON_WORD.sub(" ", str(value or "").upper()).strip()


def bundled_config_path(name: str = "collections.default.yaml") -> Path:
    return Path(str(resources.files("eucaim_node.catalogue") / "data" / name))


def load_config(path: Path | None) -> CollectionsConfig:
    """Read and validate the collections file (the bundled one, with only a default collection, when None)."""
    path = path or bundled_config_path()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read collections file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"collections file {path} is not valid YAML: {exc}") from None
    try:
        return CollectionsConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"collections file {path} is invalid: {problems}") from None
