"""Canonical bytes of an audit record: what its leaf hash is computed over.

RFC 8785 (JSON Canonicalization Scheme) via the ``rfc8785`` package: object keys sorted, no
whitespace, ECMAScript number and string forms, so any implementation (any language) derives the
same bytes from the same record. Datetimes become RFC 3339 UTC strings with millisecond precision,
the precision MongoDB stores: a record read back from the database hashes exactly as it did when it
was written. Call :func:`normalise` on a record before storing it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import rfc8785

from .merkle import leaf_hash

#: Fields that are not part of the hashed record (the stored hash itself and MongoDB's own).
UNHASHED_FIELDS = frozenset({"leaf_hash"})


def to_millis(value: datetime) -> datetime:
    """``value`` in UTC truncated to milliseconds (what BSON dates keep). Naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def format_time(value: datetime) -> str:
    value = to_millis(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def normalise(value: Any) -> Any:
    """The form a value takes after a MongoDB round trip: datetimes to ms in UTC, tuples to lists."""
    if isinstance(value, datetime):
        return to_millis(value)
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(f"an audit record holds JSON values and datetimes only, not {type(value).__name__}")


def canonical_bytes(record: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of ``record`` without :data:`UNHASHED_FIELDS`."""
    return rfc8785.dumps(_jsonable({k: v for k, v in record.items() if k not in UNHASHED_FIELDS}))


def record_leaf_hash(record: dict[str, Any]) -> bytes:
    """The Merkle leaf hash of a record (its position, ``leaf_index``, is part of what is hashed)."""
    return leaf_hash(canonical_bytes(record))
