"""A compiled search filter evaluated in memory, with MongoDB's semantics (pure; decision 0092).

FerretDB 1.24 on SQLite answers any filter but one on ``_id`` by reading and decoding every document, so
the federated search keeps the studies it reads in memory (``catalogue_sync.adapters.search_index``) and
evaluates the filter :class:`~eucaim_node.catalogue.search.QueryCompiler` emits here. Only the operators the
compiler emits are accepted (anything else is a ValueError, never a silent mismatch), each as MongoDB
defines it ("Query and Projection Operators"):

- ``{path: v}``: the value equals ``v``, or is an array with an element equal to ``v``;
- ``$in``: equality with any of the values; ``$ne``: no equality (a missing field is not equal);
- ``$exists``: the path resolves (``field.N`` resolves when the array has an element N);
- ``$regex`` (``$options`` ``i``): a string value, or a string element of an array, matches (``re.search``);
- ``$gte``/``$lt``/``$gt``/``$lte``: each bound is met by the value or by some element of an array; only
  numbers compare with numbers (booleans, strings and nulls never satisfy a numeric bound);
- ``$and``/``$or`` of such filters.

A test runs the same queries through FerretDB and through this module on the same documents.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]
_MISSING = object()
_BOUNDS = {"$gte": operator.ge, "$gt": operator.gt, "$lte": operator.le, "$lt": operator.lt}


def compile_filter(mongo_filter: Mapping[str, Any]) -> Predicate:
    """A predicate on documents equivalent to ``mongo_filter`` (as the compiler emits it)."""
    parts: list[Predicate] = []
    for field, value in mongo_filter.items():
        if field in ("$and", "$or"):
            children = [compile_filter(child) for child in value]
            parts.append(_all(children) if field == "$and" else _any(children))
        elif field.startswith("$"):
            raise ValueError(f"unsupported top-level operator {field!r}")
        else:
            parts.append(_field(field, value))
    return _all(parts)


# The predicates run once per study and search (10,000 times at 10,000 studies): the common shapes (no part, one,
# two; a path of one step) get closures without a generator or a split per call.

def _all(parts: list[Predicate]) -> Predicate:
    if not parts:
        return lambda doc: True
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda doc: first(doc) and second(doc)
    return lambda doc: all(p(doc) for p in parts)


def _any(parts: list[Predicate]) -> Predicate:
    if not parts:
        return lambda doc: False
    if len(parts) == 1:
        return parts[0]
    return lambda doc: any(p(doc) for p in parts)


def _resolver(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """``resolve`` for one path, compiled: a path of one step is a plain lookup."""
    if "." not in path:
        return lambda doc: doc.get(path, _MISSING)
    return lambda doc: resolve(doc, path)


def resolve(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (a numeric step indexes an array), or ``_MISSING``."""
    value: Any = doc
    for step in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(step, _MISSING)
        elif isinstance(value, list) and step.isdigit():
            value = value[int(step)] if int(step) < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _candidates(value: Any) -> list[Any] | tuple[Any, ...]:
    """What a condition on a field tests: the value, and each element when it is an array."""
    if value is _MISSING:
        return ()
    return [value, *value] if isinstance(value, list) else (value,)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equals(target: Any) -> Callable[[Any], bool]:
    if _is_number(target):
        return lambda v: _is_number(v) and v == target
    return lambda v: type(v) is type(target) and v == target


def _field(path: str, condition: Any) -> Predicate:
    at = _resolver(path)
    if not isinstance(condition, Mapping):
        equal = _equals(condition)
        return lambda doc: any(equal(v) for v in _candidates(at(doc)))
    ops = dict(condition)
    tests: list[Predicate] = []
    if "$in" in ops:
        matchers = [_equals(v) for v in ops.pop("$in")]
        tests.append(lambda doc: any(m(v) for v in _candidates(at(doc)) for m in matchers))
    if "$ne" in ops:
        equal = _equals(ops.pop("$ne"))
        tests.append(lambda doc: not any(equal(v) for v in _candidates(at(doc))))
    if "$exists" in ops:
        wanted = bool(ops.pop("$exists"))
        tests.append(lambda doc: (at(doc) is not _MISSING) == wanted)
    if "$regex" in ops:
        flags = re.IGNORECASE if "i" in ops.pop("$options", "") else 0
        pattern = re.compile(ops.pop("$regex"), flags)
        tests.append(lambda doc: any(isinstance(v, str) and pattern.search(v)
                                     for v in _candidates(at(doc))))
    for name in [n for n in ops if n in _BOUNDS]:
        compare, bound = _BOUNDS[name], ops.pop(name)
        tests.append(lambda doc, compare=compare, bound=bound: any(
            _is_number(v) and compare(v, bound) for v in _candidates(at(doc))))
    if ops:
        raise ValueError(f"unsupported operators {sorted(ops)} on {path!r}")
    return _all(tests) if tests else (lambda doc: any(v == {} for v in _candidates(at(doc))))
