"""EUCAIM federated search requests as the explorer builds them, and services restarted with other settings."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

#: The code system the explorer sends with SNOMED CT values (the reference requests carry it).
SNOMED = "urn:snomed-org/sct"


def cond(key: str, ctype: str, value: Any, system: str = "") -> dict[str, Any]:
    """One condition of a search request: a key, its comparison type, the value (and the value's system)."""
    return {"key": key, "type": ctype, "system": system, "value": value}


def explorer(*conditions: dict[str, Any], query_id: str = "q__search__q") -> dict[str, Any]:
    """The explorer's shape: OR -> AND -> one OR group per condition."""
    return {"ast": {"operand": "OR", "children": [{"operand": "AND", "children": [
        {"operand": "OR", "children": [c]} for c in conditions]}]}, "id": query_id}


@contextlib.contextmanager
def services_restarted_with(stack: Any, env: Mapping[str, str], *services: str) -> Iterator[None]:
    """Restart ``services`` with ``env`` added to this process's environment (which the stack hands them); on
    exit restore the environment as it was and restart them again, so later tests meet the usual settings."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        for service in services:
            stack.restart(service)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for service in services:
            stack.restart(service)
