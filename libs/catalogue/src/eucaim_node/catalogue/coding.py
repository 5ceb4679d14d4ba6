"""Coding of catalogue values as the EUCAIM federated search queries them (tables are data files).

Modality → RadLex, body part and sex → SNOMED CT, manufacturer → BIRNLex, per
``data/coding/eucaim-search.json``. A value the tables do not know keeps its raw text and gets
the explicit *unknown* code (SNOMED CT 261665006), so it is never dropped and a query for
"unknown" finds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from collections.abc import Iterable
from typing import Any, Literal

from .config import normalise_text

Field = Literal["sex", "modality", "body_part", "manufacturer"]
FIELDS: tuple[Field, ...] = ("sex", "modality", "body_part", "manufacturer")


@dataclass(frozen=True)
class Coded:
    value: str  # the normalised raw value ("UNKNOWN" when absent)
    code: str
    display: str

    @property
    def known(self) -> bool:
        return self.display != "Unknown"


class CodingTables:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.unknown = Coded("UNKNOWN", data["unknown"]["code"], data["unknown"]["display"])

    @classmethod
    def bundled(cls) -> CodingTables:
        return _bundled()

    def search_key(self, field: Field) -> str:
        return self._data[field]["key"]

    def code(self, field: Field, raw: object) -> Coded:
        table = self._data[field]
        value = normalise_text(raw)
        if not value:
            return self.unknown
        value = table.get("synonyms", {}).get(value, value)
        if field == "manufacturer":
            words = f" {value} "
            for name, entry in table["values"].items():
                if f" {name} " in words:
                    return Coded(value, entry["code"], entry["display"])
            return Coded(value, self.unknown.code, self.unknown.display)
        entry = table["values"].get(value.replace(" ", "") if field == "body_part" else value)
        if entry is None:
            return Coded(value, self.unknown.code, self.unknown.display)
        return Coded(value, entry["code"], entry["display"])

    def stored_code(self, field: Field, query_code: str) -> str:
        """The code stored in the catalogue for a code a query sends (aliases resolved)."""
        return self._data[field].get("query_aliases", {}).get(query_code, query_code)

    def display(self, field: Field, code: str) -> str:
        if code == self.unknown.code:
            return self.unknown.display
        for entry in self._data[field]["values"].values():
            if entry["code"] == code:
                return entry["display"]
        return code

    def regions(self, modality: object, body_part: object, descriptions: Iterable[object] = ()) -> frozenset[str]:
        """The body-part codes a series images, for the search: its own coded body part and every explorer
        region a ``body_region`` rule grants it (a chest CT images the lung; a mammogram the breast)."""
        own = self.code("body_part", body_part)
        modality_value = normalise_text(modality)
        words = [f" {normalise_text(d)} " for d in descriptions if d]
        found = {own.code}
        for rule in self._data["body_region"]["rules"]:
            parts, modalities = rule.get("body_parts"), rule.get("modalities")
            if parts and own.value.replace(" ", "") not in parts:
                continue
            if modalities and modality_value not in modalities:
                continue
            keywords = rule.get("description_keywords")
            if keywords and not any(f" {k} " in text for k in keywords for text in words):
                continue
            found.add(rule["region"])
        return frozenset(found)

    def codes(self, field: Field) -> set[str]:
        """Every code this field may hold (the unknown code included)."""
        return {e["code"] for e in self._data[field]["values"].values()} | {self.unknown.code}

    def query_codes(self, field: Field) -> set[str]:
        return self.codes(field) | set(self._data[field].get("query_aliases", {}))


@lru_cache(maxsize=1)
def _bundled() -> CodingTables:
    text = (resources.files("eucaim_node.catalogue") / "data" / "coding" / "eucaim-search.json").read_text(encoding="utf-8")
    return CodingTables(json.loads(text))
