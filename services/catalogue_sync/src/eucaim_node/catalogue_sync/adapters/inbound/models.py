"""The federation API's request and response bodies, as the OpenAPI document (docs/openapi.json) describes them.

The search's query is the Lens AST that EUCAIM's Focus agent forwards (samply/focus ``src/ast.rs``; real bodies
in ``catalogue.search.REQUEST_EXAMPLES_FILE`` are checked against :class:`SearchRequest` by the
tests). The answer is the dataset-service's ``{"collections": [...]}`` with Focus's ``modalities`` and ``total``
beside it. The query is evaluated by ``eucaim_node.catalogue.search.QueryCompiler``, whose messages (422) say
exactly which node of the tree it cannot answer; these models document the shapes and do not replace it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class NumberRange(BaseModel):
    min: float | None = None
    max: float | None = None


class DateRange(BaseModel):
    min: str | None = Field(default=None, description="ISO 8601 date")
    max: str | None = Field(default=None, description="ISO 8601 date")


class Condition(BaseModel):
    """One criterion: a search key (e.g. ``SNOMEDCT263495000``, gender) compared with a value."""

    model_config = ConfigDict(extra="allow")  # the explorer sends ``system``; ``nodeType`` occurs

    key: str
    type: Literal["EQUALS", "NOT_EQUALS", "IN", "BETWEEN", "LOWER_THAN", "GREATER_THAN", "CONTAINS"]
    value: str | float | bool | list[str] | NumberRange | DateRange
    system: str | None = None


class Operation(BaseModel):
    """``AND``/``OR`` of its children; an operation without children adds no constraint."""

    model_config = ConfigDict(extra="allow")

    operand: Literal["AND", "OR"]
    children: list[Operation | Condition]


class SearchRequest(BaseModel):
    ast: Operation | Condition
    id: str | None = Field(default=None, description="the explorer's query ID (ignored)")


class AgeRange(BaseModel):
    min: int = Field(description="years, widened to a multiple of 5; 0 when too few subjects have an age")
    max: int


class CollectionCounts(BaseModel):
    """A collection with enough matching subjects and studies (below the minimum it is left out)."""

    id: str
    name: str
    description: str
    studies_count: int = Field(description="matching studies, with deterministic noise")
    subjects_count: int = Field(description="distinct matching subjects, with deterministic noise")
    age_range: AgeRange
    gender: list[str] = Field(description="values held by at least the minimum number of subjects")
    modality: list[str] = Field(description="the dataset-service's name")
    modalities: list[str] = Field(description="Focus's name, the same values")
    body_parts: list[str]


class Totals(BaseModel):
    studies_count: int
    subjects_count: int


class SearchResponse(BaseModel):
    collections: list[CollectionCounts]
    total: Totals


class ErrorBody(BaseModel):
    error: str
    status_code: int


class DatasetSummary(BaseModel):
    """A released Tier 3 dataset version (the dataset-service's REST shape, ``eucaim_node.datasets.rest``)."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str


class DatasetList(BaseModel):
    total: int
    list: list[DatasetSummary]
