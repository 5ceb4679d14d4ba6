"""The catalogue's stored documents, typed: the one contract between metadata (the writer) and its readers.

metadata writes, through its ``CatalogueWriter`` port, one :class:`StudyDocument` per de-identified study
(``catalogue_studies``), one :class:`SeriesDocument` per series (``catalogue_series``), one
:class:`SubjectDocument` per pseudonymous subject (``catalogue_subjects``) and one :class:`RemovedStudy`
tombstone per study removed on a consent withdrawal (``catalogue_removed_studies``). catalogue-sync, the
federated search, the dataset resolution, the materialiser and the operator's CLI read them through
:class:`eucaim_node.catalogue.reader.CatalogueReader`, never by field-name strings of their own: a query or a
projection names fields through :data:`STUDY`, :data:`SERIES`, :data:`SUBJECT` and :data:`REMOVED`, derived from
these models, so a renamed field fails at import or in the unit tests instead of silently matching nothing.

The stored shape is the one metadata wrote before these models existed (field names, order and values are
unchanged, tested against stored examples): existing catalogues read without a migration. Fields added
after the first catalogues were written have the default every reader used for a missing value. The
entities follow the EUCAIM common data model's imaging entities (subject, image_study, image_series);
coded fields hold the federation's tokens (RadLex, SNOMED CT, BIRNLex) beside the raw values.
FerretDB 1.24 stores no nested arrays: no field below is a list of lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["REMOVED", "SERIES", "STUDY", "SUBJECT", "CatalogueDocument", "FieldNames", "RemovedStudy",
           "SeriesDocument", "StudyDocument", "SubjectDocument"]


class CatalogueDocument(BaseModel):
    """One stored catalogue document; ``key`` is its ``_id``."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=False)
    #: Fields left out of the stored document while they are None (they were added to documents later, or are
    #: set after the document is built), so a document reads back exactly as it was written.
    OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset()

    key: str = Field(alias="_id")

    def to_document(self) -> dict[str, Any]:
        """The stored form: field names as stored (``_id``), in declaration order."""
        doc = self.model_dump(by_alias=True)
        for name in self.OMITTED_WHEN_NONE:
            if doc.get(name, "") is None:
                del doc[name]
        return doc

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Self:
        """A stored document (or one read with a projection that kept every required field); raises
        ``pydantic.ValidationError`` naming the field when a required one is missing or mistyped."""
        return cls.model_validate(doc)


class SeriesDocument(CatalogueDocument):
    """One image_series, keyed by its (pseudonymised) SeriesInstanceUID."""

    OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"quality"})

    study_key: str
    subject_key: str | None = None
    modality: str
    modality_code: str
    body_part: str
    body_part_code: str
    body_region_codes: list[str] = []
    manufacturer: str
    manufacturer_code: str
    model: str | None = None
    series_date: str | None = None
    slice_thickness_mm: float | None = None
    pixel_spacing_mm: list[float] | None = None
    contrast: bool = False
    instance_count: int
    quality: dict[str, Any] | None = None


class StudyDocument(CatalogueDocument):
    """One image_study, keyed by the study key, with its series' coded values gathered (what the search reads)."""

    OMITTED_WHEN_NONE: ClassVar[frozenset[str]] = frozenset({"quality"})

    cdm: str | None = None
    subject_key: str | None
    collection_id: str
    condition_code: str | None = None
    condition_label: str | None = None
    study_date: str | None = None
    sex: str | None = None
    sex_code: str | None = None
    age_years: float | None = None
    modalities: list[str] = []
    modality_codes: list[str] = []
    body_parts: list[str] = []
    body_part_codes: list[str] = []
    body_region_codes: list[str] = []
    manufacturers: list[str] = []
    manufacturer_codes: list[str] = []
    contrast: bool = False
    programme: str | None = "unknown"
    programme_source: str = "default"
    cancer_type: str | None = "other"
    cancer_type_source: str = "default"
    assessments: list[str] = []
    assessment_codes: list[str] = []
    series_count: int = 0
    instance_count: int = 0
    indexed_at: datetime | None = None
    source_event_id: str | None = None
    quality: dict[str, Any] | None = None


class SubjectDocument(CatalogueDocument):
    """One CDM subject, recomputed from its catalogued studies. The writer keeps a ``revision`` beside these
    fields for its optimistic concurrency (decision 0002); it is the writer's, not part of the contract."""

    sex_codes: list[str] = []
    collection_ids: list[str] = []
    study_keys: list[str] = []
    study_count: int = 0
    age_at_first_study_years: float | None = None


class RemovedStudy(CatalogueDocument):
    """The tombstone of a study removed from the catalogue (consent withdrawal): what announces its removal."""

    collection_id: str
    subject_key: str | None
    removed_at: datetime


class FieldNames:
    """The stored names of a model's fields, by attribute: ``STUDY.collection_id == "collection_id"``,
    ``STUDY.key == "_id"``. An attribute that is no field raises AttributeError, so a renamed field breaks every
    query and projection that names it."""

    def __init__(self, model: type[CatalogueDocument]) -> None:
        self._model = model
        self._names = {name: field.alias or name for name, field in model.model_fields.items()}

    def __getattr__(self, name: str) -> str:
        try:
            return self.__dict__["_names"][name]
        except KeyError:
            raise AttributeError(f"{self.__dict__['_model'].__name__} has no field {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __contains__(self, stored_name: object) -> bool:
        return stored_name in self._names.values()

    def projection(self, *stored_names: str) -> dict[str, int]:
        """A MongoDB projection of these stored names (each checked: a typo or a renamed field is a KeyError)."""
        unknown = [n for n in stored_names if n not in self]
        if unknown:
            raise KeyError(f"{self._model.__name__} has no stored field {', '.join(unknown)}")
        return {n: 1 for n in stored_names}

    def require(self, stored_names: Iterable[str]) -> frozenset[str]:
        """These stored names, each checked to be a field (the first segment of a dotted path)."""
        names = frozenset(stored_names)
        self.projection(*{n.split(".", 1)[0] for n in names})
        return names


STUDY = FieldNames(StudyDocument)
SERIES = FieldNames(SeriesDocument)
SUBJECT = FieldNames(SubjectDocument)
REMOVED = FieldNames(RemovedStudy)
