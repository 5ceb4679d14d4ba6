"""The least-privilege declaration against the code: every collection used is registered and granted."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from eucaim_node.store import access, collections
from eucaim_node.store.access import Action

ROOT = Path(__file__).resolve().parents[3]
CONSTANTS = {name: value for name, value in vars(collections).items() if name.isupper() and isinstance(value, str)}
#: Source folders and the principal whose MongoDB user runs their code.
CODE_OF: dict[str, tuple[str, ...]] = {
    "reception": ("services/reception/src",),
    "anonymisation": ("services/anonymisation/src",),
    "metadata": ("services/metadata/src",),
    "catalogue-sync": ("services/catalogue_sync/src", "libs/catalogue/src"),
    "audit": ("services/audit/src", "libs/ledger/src"),
    "cli": ("libs/cli/src",),
}


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def _is_database(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.lstrip("_") in ("db", "database")


def collections_named(path: Path) -> set[str]:
    """Collection names in ``db[...]`` subscripts of one file; a name that is no registry constant is returned as
    ``?<expression>`` so that the test names it."""
    found: set[str] = set()
    module_strings = {t.id: n.value.value for n in ast.walk(ast.parse(path.read_text("utf-8")))
                      if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                      for t in n.targets if isinstance(t, ast.Name)}
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not (isinstance(node, ast.Subscript) and _is_database(node.value)):
            continue
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            found.add(key.value)
        elif isinstance(key, ast.Attribute) and key.attr in CONSTANTS:
            found.add(CONSTANTS[key.attr])
        elif isinstance(key, ast.Name) and key.id in CONSTANTS and module_strings.get(key.id, CONSTANTS[key.id]) == CONSTANTS[key.id]:
            found.add(CONSTANTS[key.id])
        else:
            found.add(f"?{ast.unparse(key)} in {path.relative_to(ROOT)}")
    return found


def test_every_collection_the_code_names_is_registered():
    files = _python_files("services", "libs", "scripts", "tests") + [ROOT / "conftest.py"]
    used = set().union(*(collections_named(p) for p in files))
    assert used, "the scan found no collection at all: the scanner is broken"
    assert sorted(used - set(collections.ALL)) == []


def test_the_registry_lists_each_constant_once():
    assert sorted(collections.ALL) == sorted(set(CONSTANTS[n] for n in CONSTANTS if n not in ("ALL",)))
    assert len(set(collections.ALL)) == len(collections.ALL)


@pytest.mark.parametrize("principal", sorted(CODE_OF))
def test_each_principal_is_granted_what_its_code_touches(principal):
    used = set().union(*(collections_named(p) for p in _python_files(*CODE_OF[principal])))
    assert used, f"no collection found in the code of {principal}"
    assert sorted(used - set(access.GRANTS[principal])) == []


def test_every_collection_has_exactly_one_writer():
    writers = {name: [p for p in access.PRINCIPALS if name in access.writable(p)] for name in collections.ALL}
    assert {name: len(who) for name, who in writers.items() if len(who) != 1} == {}


def test_only_audit_writes_the_ledger_and_never_rewrites_a_record():
    audit_collections = {name for name in collections.ALL if name.startswith("audit_")}
    for principal in access.PRINCIPALS:
        if principal != "audit":
            assert access.writable(principal) & audit_collections == set(), principal
    assert access.GRANTS["audit"][collections.AUDIT_RECORDS].isdisjoint({Action.UPDATE, Action.REMOVE})
    assert access.GRANTS["audit"][collections.AUDIT_TREE_HEADS].isdisjoint({Action.UPDATE, Action.REMOVE})


def test_public_facing_catalogue_sync_cannot_write_the_ledger_or_the_withdrawal_list():
    forbidden = {c for c in collections.ALL if c.startswith("audit_")} | set(collections.WITHDRAWAL_LIST)
    assert access.writable("catalogue-sync") & forbidden == set()
    assert access.readable("catalogue-sync") & set(collections.WITHDRAWAL_LIST) == set()


def test_the_operators_cli_only_reads():
    assert access.writable("cli") == set()


def test_principal_names_accept_module_and_component_spelling():
    assert access.mongo_username("catalogue_sync") == access.mongo_username("catalogue-sync") == "eucaim-catalogue-sync"
    with pytest.raises(KeyError, match="unknown MongoDB principal"):
        access.principal_of("witness")
