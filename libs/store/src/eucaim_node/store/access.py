"""Least privilege in MongoDB, declared once: which collections each principal may read and write.

One principal per service, plus ``cli`` (the operator's ``eucaim-node`` command). Each gets its own MongoDB
user with one custom role built from :data:`GRANTS` (privilege actions of the MongoDB manual, "Privilege
Actions": ``find``, ``insert``, ``update``, ``remove``, ``createIndex``). ``scripts/mongo_users.py``
renders the mongosh script that creates the roles and users for docker-compose and Helm from this table;
a test fails when the rendered script is stale, and another when code names a collection that no principal
may touch.

Derived from the adapters (each line cites its use) and bound by two rules of the design:

* only ``audit`` writes ``audit_*``, and even ``audit`` may not update or remove a ledger record (the
  ledger is append-only; only its forwarding cursor in ``audit_ledger_state`` and the derived subtree hashes in
  ``audit_tree_nodes``, repaired from the leaves, are updated);
* ``catalogue-sync`` (public-facing: the federated search and the DCAT catalogue) writes only its own
  collections, never the ledger nor the withdrawal list.

FerretDB 1.24, the local stand-in, authenticates users but does not enforce roles (decision 0075).
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Mapping

from . import collections as c

__all__ = ["Action", "GRANTS", "PRINCIPALS", "mongo_username", "readable", "role_name", "writable"]


class Action(StrEnum):
    """MongoDB privilege actions (manual: "Privilege Actions", Query and Write Actions, createIndex)."""

    FIND = "find"
    INSERT = "insert"
    UPDATE = "update"
    REMOVE = "remove"
    CREATE_INDEX = "createIndex"


F, I, U, R, X = Action.FIND, Action.INSERT, Action.UPDATE, Action.REMOVE, Action.CREATE_INDEX  # noqa: E741 (one-letter names keep the grants table readable)
#: update_one/replace_one with upsert=True needs insert as well as update.
UPSERT = frozenset({F, I, U})

_GRANTS: dict[str, dict[str, frozenset[Action]]] = {
    "reception": {
        c.RECEPTION_CURSORS: UPSERT,               # adapters/ledger.py: cursor read, update_one upsert
        c.RECEPTION_RECEIVED_STUDIES: UPSERT,      # adapters/ledger.py: last announced state
    },
    "anonymisation": {
        c.ANONYMISATION_QUARANTINE: UPSERT,        # adapters/quarantine.py: update_one upsert
        c.ANONYMISATION_WITHDRAWALS: frozenset({F, I}),  # store/withdrawals.py: insert once, find
    },
    "metadata": {
        c.CATALOGUE_STUDIES: frozenset({F, I, U, R, X}),     # adapters/catalogue.py: replace upsert, delete
        c.CATALOGUE_SERIES: frozenset({F, I, U, R, X}),
        c.CATALOGUE_SUBJECTS: frozenset({F, I, U, R}),       # revisioned insert/replace/delete
        c.CATALOGUE_REMOVED_STUDIES: frozenset({F, I, U, X}),  # tombstones: replace upsert
        c.CATALOGUE_WITHDRAWN_SUBJECTS: frozenset({F, I}),     # insert once, find
    },
    "catalogue-sync": {
        c.CATALOGUE_STUDIES: frozenset({F}),                 # aggregates and the federated search
        c.CATALOGUE_REMOVED_STUDIES: frozenset({F}),         # the aggregates' watermark
        c.CATALOGUE_COLLECTIONS: UPSERT,                     # adapters/collection_store.py
        c.CATALOGUE_SUBJECTS: frozenset({F}),                # a subject's study keys (its entries in the parts)
        c.CATALOGUE_COLLECTION_PARTS: UPSERT,                # adapters/collection_store.py: revisioned parts
        c.CATALOGUE_COLLECTION_PART_TOTALS: UPSERT,          # their totals, guarded by revision
        c.CATALOGUE_SUBJECT_PLACES: UPSERT,                  # $addToSet upsert
        c.CATALOGUE_DATASET_VERSIONS: frozenset({F, I, U, X}),  # adapters/versions.py: versions and outbox
        c.CATALOGUE_SEARCH_STATE: frozenset({F, I}),         # catalogue/store.py noise_secret: created once
        c.DATASETS: frozenset({F}),                          # http.py: GET /api/datasets, DCAT of published versions
    },
    "materialiser": {
        c.DATASETS: frozenset({F, I, U}),                    # datasets/mongo.py: insert, find_one_and_update
        c.DATASET_GRANTS: frozenset({F, I, U}),              # datasets/mongo.py: insert, close
        c.DATASET_COMMANDS: frozenset({F, I}),               # materialiser/adapters: one outcome per command
        c.CATALOGUE_SUBJECTS: frozenset({F}),                # eforms.json: the subjects' de-identified data
        c.CATALOGUE_STUDIES: frozenset({F}),
    },
    "audit": {
        c.AUDIT_RECORDS: frozenset({F, I, X}),               # ledger/store.py: append-only, no update/remove
        c.AUDIT_TREE_HEADS: frozenset({F, I}),               # signed heads: insert once
        c.AUDIT_LEDGER_STATE: UPSERT,                        # the syslog cursors, the witness state (witnessing.py)
        c.AUDIT_TREE_NODES: UPSERT,                          # ledger/store.py TreeNodeIndex: subtree hashes, inserted
                                                             # once; a wrong one replaced from the leaves (0115)
    },
    "jobs": {
        c.JOBS: frozenset({F, I, U, X}),                     # jobs adapters/outbound/store.py: insert, update, index
        c.DATASETS: frozenset({F}),                          # datasets.access.materialised_path: is it usable
        c.DATASET_GRANTS: frozenset({F}),                    # datasets.access.holds_open_grant
    },
    # The operator's command (audit verify|prove|export|head, search, catalogue dcat, the walkthrough): reads only.
    # `audit head --sign` writes a head: it is the audit service's act, run with the audit user (docs/operations.md).
    "cli": {
        c.AUDIT_RECORDS: frozenset({F}),
        c.AUDIT_TREE_HEADS: frozenset({F}),
        c.AUDIT_TREE_NODES: frozenset({F}),                  # audit prove|consistency: O(log n) subtree hashes
        c.CATALOGUE_STUDIES: frozenset({F}),
        c.CATALOGUE_SERIES: frozenset({F}),
        c.CATALOGUE_COLLECTIONS: frozenset({F}),
        c.CATALOGUE_DATASET_VERSIONS: frozenset({F}),
        c.CATALOGUE_SEARCH_STATE: frozenset({F}),
        c.DATASETS: frozenset({F}),                          # dataset list|show|verify; create checks names
        c.DATASET_GRANTS: frozenset({F}),
        c.DATASET_COMMANDS: frozenset({F}),                  # the outcome of the command it sent
    },
}

#: principal → collection → allowed actions (read-only view).
GRANTS: Mapping[str, Mapping[str, frozenset[Action]]] = MappingProxyType(
    {p: MappingProxyType(g) for p, g in _GRANTS.items()})
#: Every principal: the five services and the operator's CLI.
PRINCIPALS: tuple[str, ...] = tuple(GRANTS)


def principal_of(service: str) -> str:
    """The principal of a service named as a Python module (``catalogue_sync``) or as a component (``catalogue-sync``)."""
    principal = service.replace("_", "-")
    if principal not in GRANTS:
        raise KeyError(f"unknown MongoDB principal {service!r}; expected one of {', '.join(PRINCIPALS)}")
    return principal


def mongo_username(principal: str) -> str:
    """The MongoDB user of a principal (users live in the ``admin`` database)."""
    return f"eucaim-{principal_of(principal)}"


def role_name(principal: str) -> str:
    """The custom role that holds the principal's privileges (defined in ``admin``)."""
    return f"eucaim-{principal_of(principal)}-role"


def readable(principal: str) -> frozenset[str]:
    return frozenset(name for name, actions in GRANTS[principal_of(principal)].items() if Action.FIND in actions)


def writable(principal: str) -> frozenset[str]:
    """Collections the principal may change in any way (insert, update, remove, createIndex)."""
    return frozenset(name for name, actions in GRANTS[principal_of(principal)].items() if actions - {Action.FIND})
