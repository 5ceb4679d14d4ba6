"""A semantic canonical form of a compiled search filter: the key of the search's deterministic noise (pure).

Small-cell noise is a deterministic function of (node secret, query, collection, true count), so asking
the same question again returns the same answer. If "the same question" meant the query's *text*, a
caller could write one question many ways (reordered children, an added empty group, a duplicated
condition, ``IN`` values reordered, a key's synonym) and average the fresh noise of each way away.
The noise is therefore keyed on this canonical form of the MongoDB filter the compiler produced, so
that every rewrite below maps to one form:

- ``$and``/``$or`` are associative, commutative and idempotent: nested groups of the same operator are
  flattened, children deduplicated and sorted, a group of one child is that child;
- ``{}`` (no constraint, what an empty group compiles to) is the unit of ``$and`` and absorbs ``$or``;
  an impossible leaf (``$in: []``, an empty range) is the unit of ``$or`` and absorbs ``$and``;
- absorption: ``A AND (A OR B)`` is ``A``, ``A OR (A AND B)`` is ``A``;
- leaves: ``{p: v}`` and ``{p: {$in: [v]}}`` are one equality; equalities and ``$in`` on one path inside an
  ``$or`` merge into one ``$in`` (sorted, deduplicated); ranges on one path inside an ``$and`` intersect
  (in MongoDB ``{p: {$gte: a}}, {p: {$lt: b}}`` and ``{p: {$gte: a, $lt: b}}`` match the same documents,
  arrays included); range bounds outside a path's value domain are dropped; a case-insensitive
  ``$regex`` is lower-cased.

Not normalised (left as written, so such variants still get independent noise): distributivity
(``A AND (B OR C)`` against ``(A AND B) OR (A AND C)``) and queries that are not equivalent in general
but match the same studies in this catalogue (``CONTAINS "siem"`` and ``CONTAINS "siemens"``). Decision 0070.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

TRUE: tuple = ("true",)
FALSE: tuple = ("false",)
Node = tuple  # ("and"|"or", children...) | ("eq", path, v) | ("in", path, vs) | ("range", path, lo, hi) | ...

Domains = Mapping[str, tuple[float, float]]


def canonical_form(mongo_filter: Mapping[str, Any], domains: Domains | None = None) -> Node:
    """The canonical tree of a filter as :class:`~eucaim_node.catalogue.search.QueryCompiler` emits it.

    ``domains``: path → (least, greatest) value a document can hold there (bounds beyond them say nothing)."""
    return _simplify(_parse(mongo_filter, domains or {}))


def canonical_text(mongo_filter: Mapping[str, Any], domains: Domains | None = None) -> str:
    """:func:`canonical_form` as compact JSON: equal for equivalent filters, the noise key."""
    return json.dumps(canonical_form(mongo_filter, domains), separators=(",", ":"), sort_keys=True)


# -- parsing into leaves --------------------------------------------------------------------------------------

def _parse(node: Mapping[str, Any], domains: Domains) -> Node:
    if not isinstance(node, Mapping):
        raise TypeError(f"a filter must be a mapping, not {type(node).__name__}")
    parts: list[Node] = []
    for field, value in node.items():
        if field in ("$and", "$or"):
            parts.append((field[1:], *(_parse(child, domains) for child in value)))
        elif field.startswith("$"):
            raise ValueError(f"unsupported top-level operator {field!r}")
        else:
            parts.append(_leaf(field, value, domains))
    if not parts:
        return TRUE
    return parts[0] if len(parts) == 1 else ("and", *parts)


def _leaf(path: str, value: Any, domains: Domains) -> Node:
    if not isinstance(value, Mapping):
        return ("eq", path, value)
    ops = dict(value)
    parts: list[Node] = []
    if "$in" in ops:
        parts.append(_in(path, ops.pop("$in")))
    if "$ne" in ops:
        parts.append(("ne", path, ops.pop("$ne")))
    if "$exists" in ops:
        parts.append(("exists", path, bool(ops.pop("$exists"))))
    if "$regex" in ops:
        options = ops.pop("$options", "")
        pattern = ops.pop("$regex")
        parts.append(("regex", path, pattern.lower() if "i" in options else pattern, "i" if "i" in options else ""))
    if "$gte" in ops or "$lt" in ops:
        parts.append(_range(path, ops.pop("$gte", None), ops.pop("$lt", None), domains))
    if ops:
        raise ValueError(f"unsupported operators {sorted(ops)} on {path!r}")
    if not parts:
        return ("eq", path, {})
    return parts[0] if len(parts) == 1 else ("and", *parts)


def _in(path: str, values: list[Any]) -> Node:
    distinct = sorted({json.dumps(v, sort_keys=True) for v in values})
    if not distinct:
        return FALSE
    if len(distinct) == 1:
        return ("eq", path, json.loads(distinct[0]))
    return ("in", path, tuple(json.loads(v) for v in distinct))


def _range(path: str, low: float | None, high: float | None, domains: Domains) -> Node:
    """``low <= value < high``; a bound the domain already implies is dropped, an empty interval is FALSE."""
    least, greatest = domains.get(path, (-math.inf, math.inf))
    low = None if low is None or low <= least else float(low)
    high = None if high is None or high > greatest else float(high)
    if low is not None and high is not None and low >= high:
        return FALSE
    return ("range", path, low, high)


# -- simplification -------------------------------------------------------------------------------------------

def _key(node: Node) -> str:
    return json.dumps(node, separators=(",", ":"))


def _simplify(node: Node) -> Node:
    if node[0] not in ("and", "or"):
        return node
    op = node[0]
    unit, zero = (TRUE, FALSE) if op == "and" else (FALSE, TRUE)
    children: list[Node] = []
    for child in (_simplify(c) for c in node[1:]):
        if child[0] == op:  # associativity
            children.extend(child[1:])
        elif child == zero:
            return zero
        elif child != unit:
            children.append(child)
    children = _merge_ranges(children) if op == "and" else _merge_values(children)
    children = _absorb(op, children)
    if zero in children:
        return zero
    distinct = {_key(c): c for c in children}  # idempotence
    children = [distinct[k] for k in sorted(distinct)]  # commutativity
    if not children:
        return unit
    return children[0] if len(children) == 1 else (op, *children)


def _merge_ranges(children: list[Node]) -> list[Node]:
    """In an ``$and``, ranges on one path intersect."""
    ranges: dict[str, tuple[float | None, float | None]] = {}
    rest: list[Node] = []
    for child in children:
        if child[0] != "range":
            rest.append(child)
            continue
        _, path, low, high = child
        old_low, old_high = ranges.get(path, (None, None))
        ranges[path] = (_pick(max, old_low, low), _pick(min, old_high, high))
    for path, (low, high) in ranges.items():
        rest.append(FALSE if low is not None and high is not None and low >= high else ("range", path, low, high))
    return rest


def _merge_values(children: list[Node]) -> list[Node]:
    """In an ``$or``, equalities and ``$in`` on one path become one ``$in``."""
    values: dict[str, list[Any]] = {}
    rest: list[Node] = []
    for child in children:
        if child[0] == "eq":
            values.setdefault(child[1], []).append(child[2])
        elif child[0] == "in":
            values.setdefault(child[1], []).extend(child[2])
        else:
            rest.append(child)
    rest.extend(_in(path, vs) for path, vs in values.items())
    return rest


def _absorb(op: str, children: list[Node]) -> list[Node]:
    """``A AND (A OR B)`` → ``A``; ``A OR (A AND B)`` → ``A``, also when ``A OR B`` was simplified to one leaf
    (``p = a`` absorbs ``p IN (a, b)`` in an AND): in an AND a child implied by another is dropped, in an OR
    a child that implies another. Of two that imply each other the one with the smaller key stays."""
    keys = [_key(c) for c in children]
    # A group or leaf can only be implied by (AND) or imply (OR) a leaf on its own path or on the path of one of
    # its direct children (children of op are not op groups, nested groups are never "wider" or "narrower"
    # by the sufficient test of _implies): compare those pairs only, not all n² (the search's hot path).
    by_path: dict[str, list[int]] = {}
    for j, c in enumerate(children):
        if c[0] in _ORDERED:
            by_path.setdefault(c[1], []).append(j)

    def redundant(i: int) -> bool:
        child = children[i]
        parts = child[1:] if child[0] in ("and", "or") else (child,)
        paths = {part[1] for part in parts if part[0] in _ORDERED}
        others = [j for path in sorted(paths) for j in by_path.get(path, ())]
        for j in others:
            other = children[j]
            if keys[j] == keys[i]:
                continue
            wider, narrower = (children[i], other) if op == "and" else (other, children[i])
            if _implies(narrower, wider) and (not _implies(wider, narrower) or keys[j] < keys[i]):
                return True
        return False

    return [c for i, c in enumerate(children) if not redundant(i)]


#: Leaves that can imply a different leaf on the same path.
_ORDERED = ("eq", "in", "range")


def _implies(a: Node, b: Node) -> bool:
    """A sufficient test that every document ``a`` matches is matched by ``b`` (False when unsure)."""
    if a == b:
        return True
    if b[0] == "or":
        return any(_implies(a, child) for child in b[1:])
    if a[0] == "and":
        return any(_implies(child, b) for child in a[1:])
    if a[0] in ("and", "or", "true", "false") or b[0] in ("and", "or", "true", "false") or a[1] != b[1]:
        return False
    if a[0] in ("eq", "in") and b[0] == "in":
        values = {_key(v) for v in b[2]}
        return all(_key(v) in values for v in ((a[2],) if a[0] == "eq" else a[2]))
    if a[0] == "range" and b[0] == "range":
        return ((b[2] is None or (a[2] is not None and a[2] >= b[2]))
                and (b[3] is None or (a[3] is not None and a[3] <= b[3])))
    return False


def _pick(choose, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return choose(a, b)
