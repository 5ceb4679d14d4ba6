"""The EUCAIM federated search: the query tree Focus sends, evaluated as a MongoDB filter.

A query is ``{"ast": <node>, "id": ...}``; a node is an operation ``{"operand": "AND"|"OR",
"children": [...]}`` or a condition ``{"key", "type", "value"}`` (extra members such as
``system`` or ``nodeType`` are ignored). Every operand and condition type is evaluated; the
filter uses only what FerretDB 1.24 and MongoDB both implement (``$and``, ``$or``, ``$in``,
``$ne``, ``$exists``, ``$gte``/``$lt``, ``$regex``); study documents hold the series' values as
arrays of distinct values.

Semantics (as the reference node, chaimeleon-eu/dataset-service, where it defines them):
- gender, age, diagnosis are study-level; modality, body part and manufacturer are series-level
  and a condition holds when *some* series of the study satisfies it (so ``modality NOT_EQUALS
  CT`` finds studies with a series that is not CT).
- coded values are the federation's tokens (``SNOMEDCT248153007``, ``RID10312``, ``birnlex_3065``);
  SNOMEDCT261665006 ("unknown") finds the values the node could not code. ``CONTAINS`` matches a
  case-insensitive substring of the raw value (``CONTAINS "siem"`` on the manufacturer).
- age is in whole years at the time of the study: ``EQUALS 45`` is 45 ≤ age < 46; ``BETWEEN
  {min: 30, max: 70}`` includes both ends; studies of unknown age never satisfy an age condition.
- an operation without children adds no constraint.

- body part means the *region* a series images (``body_region`` in the coding tables): ``EQUALS Lung``
  finds low-dose chest CT coded CHEST, ``EQUALS Pelvis`` a prostate MR; ``NOT_EQUALS Lung`` finds studies
  none of whose series images the lung (decision 0095).
- a key of the explorer's catalogue this node holds no data for (the EUCAIM hyper-ontology's tumour
  markers, grades, TNM; year of diagnosis, which de-identification shifts) is a condition that holds for
  no study, as the reference node answers a key it lacks; :attr:`CompiledQuery.unanswered` names it for
  the audit (decision 0095).
- ``programme`` (the node's own key) filters on the study's screening programme (``organised-screening``,
  ``opportunistic-screening``, ``diagnostic``, ``unknown``); diagnosis is the study's condition: the
  collection's, else the one of the study's cancer type (decision 0096).

Unlike the reference node, a key of no known vocabulary, an unknown operand or condition type, or a
value of the wrong shape is an error (:class:`QueryError`, answered with 422 and a message naming the
problem), never silently false: a caller who mistyped should learn it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .canonical import canonical_text
from .coding import CodingTables, Field

#: The explorer's reference requests (shared/reference/eucaim-search/request-examples.json, upstream sources named
#: inside): the one copy in the repository, read by the readiness report (every EUCAIM one must be answered)
#: and by the compiler's and the federation's tests.
REQUEST_EXAMPLES_FILE = Path(str(resources.files("eucaim_node.catalogue") / "data" / "eucaim-search" / "request-examples.json"))

MAX_DEPTH = 16
MAX_NODES = 512
MAX_TEXT = 256
#: Ages are decoded from an Age String (PS3.5 Table 6.2-1, VR AS: at most "999Y"): no age lies outside this.
AGE_DOMAIN = (0.0, 999.0)
#: Keys of the explorer's catalogue (shared/reference/eucaim-search/search-keys.json) this node holds no data for,
#: answered as conditions no study meets; every other key of the EUCAIM hyper-ontology is treated the same.
UNANSWERED_KEYS = {
    "SNOMEDCT432213005": "year of diagnosis (de-identification shifts every date)",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1045815": "estrogen receptor",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1046085": "progesterone receptor",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1045851": "HER2",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1045913": "Ki-67",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1033410": "PSA",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1037294": "Gleason score",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1037300": "ISUP grade group",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1033379": "cT category",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1033391": "pT category",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1033358": "cN category",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1033368": "pN category",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1033341": "cM category",
    "EUCAIM_Hyper-Ontology_V1.0.CLIN1033349": "pM category",
}
HYPER_ONTOLOGY = re.compile(r"^EUCAIM_Hyper-Ontology_V\d+(\.\d+)*\.[A-Z]+\d+$")
#: The explorer's BI-RADS / PI-RADS assessment key (one key for both; the values tell them apart).
ASSESSMENT_KEY = "EUCAIM_Hyper-Ontology_V1.0.IMG1005459"
#: The screening programme (catalogue/screening.py): organised-screening, opportunistic-screening, diagnostic, unknown.
PROGRAMME_KEY = "programme"
#: A condition no study meets (an empty ``$in``; canonical.py reads it as FALSE).
NO_STUDY: dict[str, Any] = {"_id": {"$in": []}}

CONDITION_TYPES = ("EQUALS", "NOT_EQUALS", "IN", "CONTAINS", "BETWEEN", "LOWER_THAN", "GREATER_THAN")
CODED_TYPES = ("EQUALS", "NOT_EQUALS", "IN", "CONTAINS")
NUMERIC_TYPES = ("EQUALS", "NOT_EQUALS", "BETWEEN", "LOWER_THAN", "GREATER_THAN")


class QueryError(ValueError):
    """The query is malformed or asks what this node cannot answer; ``str()`` says what and where."""

    def __init__(self, message: str, where: str = "ast") -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


@dataclass(frozen=True)
class SearchKey:
    name: str
    field: Field | None  # coding table, None for numbers and diagnosis
    level: str  # "study" or "series"
    code_path: str | None  # document field holding codes
    raw_path: str | None  # document field holding raw values (CONTAINS)
    numeric_path: str | None = None
    code_pattern: str | None = None  # for keys whose values are not from a closed table
    example: str = "SNOMEDCT363358000"  # a valid value, for error messages
    unknown_value: str | None = None  # what the "unknown" code (SNOMEDCT261665006) means in the stored field


def _keys(tables: CodingTables) -> dict[str, SearchKey]:
    gender = SearchKey("gender", "sex", "study", "sex_code", "sex")
    age = SearchKey("age at diagnosis", None, "study", None, None, numeric_path="age_years")
    diagnosis = SearchKey("diagnosis", None, "study", "condition_code", "condition_label", code_pattern=r"^SNOMEDCT\d{6,18}$")
    modality = SearchKey("modality", "modality", "series", "modality_codes", "modalities")
    # Study level over the regions its series image: EQUALS "a series images it", NOT_EQUALS "none does".
    body_part = SearchKey("body part", "body_part", "study", "body_region_codes", "body_parts")
    # The node's own key (not in the explorer's catalogue): the screening programme a study belongs to.
    programme = SearchKey("programme", None, "study", "programme", "programme",
                          code_pattern=r"^(organised-screening|opportunistic-screening|diagnostic|unknown)$",
                          example="organised-screening", unknown_value="unknown")
    assessment = SearchKey("BI-RADS/PI-RADS assessment", None, "study", "assessment_codes", "assessments",
                           code_pattern=r"^EUCAIM_Hyper-Ontology_V1\.0\.IMG\d{4,9}$",
                           example="EUCAIM_Hyper-Ontology_V1.0.IMG1005465")
    manufacturer = SearchKey("manufacturer", "manufacturer", "series", "manufacturer_codes", "manufacturers")
    keys = {
        tables.search_key("sex"): gender, "SNOMEDCT423493009": age, "SNOMEDCT439401001": diagnosis,
        tables.search_key("modality"): modality, tables.search_key("body_part"): body_part,
        tables.search_key("manufacturer"): manufacturer, ASSESSMENT_KEY: assessment, PROGRAMME_KEY: programme,
    }
    # The parameter names of Focus's eucaim-api endpoint type, accepted as synonyms.
    keys |= {"gender": gender, "age": age, "diagnosis": diagnosis, "modality": modality, "bodyPart": body_part,
             "manufacturer": manufacturer}
    return keys


@dataclass(frozen=True)
class CompiledQuery:
    filter: dict[str, Any]
    canonical: str  # semantic canonical form of the filter (canonical.py): the noise key, equal for equivalent queries
    conditions: int
    keys: tuple[str, ...]
    text: str = ""  # the tree as sent, without ignored members: what the audit shows a reader
    unanswered: tuple[str, ...] = ()  # keys this node holds no data for (their conditions meet no study)


class QueryCompiler:
    def __init__(self, tables: CodingTables | None = None) -> None:
        self.tables = tables or CodingTables.bundled()
        self.keys = _keys(self.tables)

    def compile_request(self, body: Any) -> CompiledQuery:
        """Compile a request body ``{"ast": ..., "id": ...}`` (``id`` is ignored)."""
        if not isinstance(body, dict):
            raise QueryError("the request body must be a JSON object with an 'ast' member", "body")
        if "ast" not in body:
            raise QueryError("missing member 'ast'", "body")
        return self.compile(body["ast"])

    def compile(self, ast: Any) -> CompiledQuery:
        state = {"nodes": 0, "conditions": 0, "keys": set(), "unanswered": set()}
        mongo = self._node(ast, "ast", 0, state)
        domains = {spec.numeric_path: AGE_DOMAIN for spec in self.keys.values() if spec.numeric_path}
        return CompiledQuery(mongo, canonical_text(mongo, domains), state["conditions"], tuple(sorted(state["keys"])),
                             json.dumps(_stripped(ast), sort_keys=True, separators=(",", ":")),
                             tuple(sorted(state["unanswered"])))

    # -- tree -------------------------------------------------------------------------------------

    def _node(self, node: Any, where: str, depth: int, state: dict[str, Any]) -> dict[str, Any]:
        state["nodes"] += 1
        if state["nodes"] > MAX_NODES:
            raise QueryError(f"the query has more than {MAX_NODES} nodes", where)
        if depth > MAX_DEPTH:
            raise QueryError(f"the query is nested deeper than {MAX_DEPTH} levels", where)
        if not isinstance(node, dict):
            raise QueryError("expected an operation {operand, children} or a condition {key, type, value}", where)
        if "operand" in node or "children" in node:
            return self._operation(node, where, depth, state)
        if "key" in node:
            state["conditions"] += 1
            return self._condition(node, where, state)
        raise QueryError("expected an operation {operand, children} or a condition {key, type, value}", where)

    def _operation(self, node: dict[str, Any], where: str, depth: int, state: dict[str, Any]) -> dict[str, Any]:
        operand = node.get("operand")
        if operand not in ("AND", "OR"):
            raise QueryError(f"unknown operand {_show(operand)} (expected AND or OR)", f"{where}.operand")
        children = node.get("children")
        if not isinstance(children, list):
            raise QueryError("'children' must be an array", f"{where}.children")
        parts = [self._node(c, f"{where}.children[{i}]", depth + 1, state) for i, c in enumerate(children)]
        parts = [p for p in parts if p]
        if not parts:
            return {}
        if len(parts) == 1:
            return parts[0]
        return {"$and" if operand == "AND" else "$or": parts}

    def _condition(self, node: dict[str, Any], where: str, state: dict[str, Any]) -> dict[str, Any]:
        key, ctype = node.get("key"), node.get("type")
        if not isinstance(key, str) or not key:
            raise QueryError("'key' must be a non-empty string", f"{where}.key")
        spec = self.keys.get(key)
        if spec is None and (key in UNANSWERED_KEYS or HYPER_ONTOLOGY.match(key)):
            return self._unanswered(node, key, where, state)
        if spec is None:
            supported = ", ".join(k for k in self.keys if not k[0].islower())
            raise QueryError(f"unsupported search key {_show(key)} (this node answers {supported})", f"{where}.key")
        if ctype not in CONDITION_TYPES:
            raise QueryError(f"unknown condition type {_show(ctype)} (expected one of {', '.join(CONDITION_TYPES)})",
                             f"{where}.type")
        if "value" not in node:
            raise QueryError("missing 'value'", f"{where}.value")
        state["keys"].add(spec.name)
        if spec.numeric_path:
            return self._numeric(spec, ctype, node["value"], where)
        return self._coded(spec, ctype, node["value"], where)

    def _unanswered(self, node: dict[str, Any], key: str, where: str, state: dict[str, Any]) -> dict[str, Any]:
        """A well-formed condition on a key this node holds no data for: it meets no study (reference node)."""
        if node.get("type") not in CONDITION_TYPES:
            raise QueryError(f"unknown condition type {_show(node.get('type'))} (expected one of {', '.join(CONDITION_TYPES)})",
                             f"{where}.type")
        if "value" not in node:
            raise QueryError("missing 'value'", f"{where}.value")
        state["unanswered"].add(key)
        return NO_STUDY

    # -- conditions -------------------------------------------------------------------------------

    def _code(self, spec: SearchKey, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            raise QueryError(f"a {spec.name} value must be a code (a non-empty string)", where)
        if spec.field is not None:
            if value == self.tables.unknown.code:
                return value
            # A well-formed code this node does not hold simply matches nothing.
            return self.tables.stored_code(spec.field, value)
        if value == self.tables.unknown.code:
            return spec.unknown_value or value
        if spec.code_pattern and not re.match(spec.code_pattern, value):
            raise QueryError(f"{_show(value)} is not a {spec.name} code (expected e.g. {spec.example})", where)
        return value

    def _coded(self, spec: SearchKey, ctype: str, value: Any, where: str) -> dict[str, Any]:
        path = spec.code_path
        series = spec.level == "series"
        if ctype not in CODED_TYPES:
            raise QueryError(f"{ctype} does not apply to {spec.name} (use one of {', '.join(CODED_TYPES)})", f"{where}.type")
        if ctype == "EQUALS":
            return {path: self._code(spec, value, f"{where}.value")}
        if ctype == "NOT_EQUALS":
            code = self._code(spec, value, f"{where}.value")
            if not series:
                return {path: {"$ne": code}}
            # "Some series differs": the arrays hold distinct values, so two or more means one differs, and a
            # single value must itself differ. (FerretDB 1.24 has no $elemMatch with $ne.)
            return {"$or": [{"$and": [{path: {"$ne": code}}, {f"{path}.0": {"$exists": True}}]},
                            {f"{path}.1": {"$exists": True}}]}
        if ctype == "IN":
            if not isinstance(value, list) or len(value) > MAX_NODES:
                raise QueryError(f"IN needs an array of {spec.name} codes", f"{where}.value")
            return {path: {"$in": sorted({self._code(spec, v, f"{where}.value[{i}]") for i, v in enumerate(value)})}}
        # CONTAINS: substring of the raw value, case-insensitive.
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
            raise QueryError("CONTAINS needs a non-empty text value", f"{where}.value")
        return {spec.raw_path: {"$regex": re.escape(value.strip()), "$options": "i"}}

    def _number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value or abs(value) > 1e6:
            raise QueryError("expected a number", where)
        return float(value)

    def _numeric(self, spec: SearchKey, ctype: str, value: Any, where: str) -> dict[str, Any]:
        path = spec.numeric_path
        if ctype not in NUMERIC_TYPES:
            raise QueryError(f"{ctype} does not apply to {spec.name} (use one of {', '.join(NUMERIC_TYPES)})", f"{where}.type")
        if ctype == "BETWEEN":
            if not isinstance(value, dict) or not ({"min", "max"} & set(value)):
                raise QueryError("BETWEEN needs {min, max}", f"{where}.value")
            bounds: dict[str, float] = {}
            if value.get("min") is not None:
                bounds["$gte"] = self._number(value["min"], f"{where}.value.min")
            if value.get("max") is not None:
                bounds["$lt"] = self._number(value["max"], f"{where}.value.max") + 1
            if "$gte" in bounds and "$lt" in bounds and bounds["$gte"] >= bounds["$lt"]:
                raise QueryError("BETWEEN min is greater than max", f"{where}.value")
            return {path: bounds}
        number = self._number(value, f"{where}.value")
        if ctype == "EQUALS":
            return {path: {"$gte": number, "$lt": number + 1}}
        if ctype == "NOT_EQUALS":
            return {"$or": [{path: {"$lt": number}}, {path: {"$gte": number + 1}}]}
        if ctype == "LOWER_THAN":
            return {path: {"$lt": number}}
        return {path: {"$gte": number + 1}}  # GREATER_THAN, in whole years


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _stripped(node: Any) -> Any:
    """The tree without members the evaluation ignores (``system``, ``nodeType``, ...)."""
    if isinstance(node, dict):
        if "key" in node:
            return {k: node.get(k) for k in ("key", "type", "value")}
        return {"operand": node.get("operand"), "children": [_stripped(c) for c in node.get("children") or []]}
    return node
