"""The least-privilege declaration against the code: every collection used is registered and granted."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

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
    "cli": ("libs/cli/src", "libs/datasets/src/eucaim_node/datasets/resolve.py"),
    "materialiser": ("services/materialiser/src", "libs/datasets/src/eucaim_node/datasets/mongo.py"),
    "jobs": ("services/jobs/src",),
}
#: What a collection name looks like (every registered one but two, which are matched by name).
COLLECTION_LIKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)+")
#: Database methods that are not collections (``db.command(...)``); any other attribute of a database is one.
DATABASE_METHODS = frozenset(name for name in dir(AsyncDatabase) if not name.startswith("__")) | frozenset(
    name for name in dir(Database) if not name.startswith("__"))


def _python_files(*paths: str) -> list[Path]:
    found = []
    for path in (ROOT / p for p in paths):
        found += [path] if path.is_file() else path.rglob("*.py")
    return sorted(found)


def _is_database(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name.lstrip("_") in ("db", "database")


def _named_collection(node: ast.AST) -> ast.expr | None:
    """The expression naming a collection in ``db[name]``, ``db.get_collection(name)``, ``db.create_collection(name)``
    or ``db.drop_collection(name)``; ``db.name`` (attribute access) gives the name as a constant."""
    if isinstance(node, ast.Subscript) and _is_database(node.value):
        return node.slice
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_database(node.func.value)
            and node.func.attr in ("get_collection", "create_collection", "drop_collection") and node.args):
        return node.args[0]
    if (isinstance(node, ast.Attribute) and _is_database(node.value) and node.attr not in DATABASE_METHODS
            and (node.attr in collections.ALL or COLLECTION_LIKE.fullmatch(node.attr))):
        # Attribute access is pymongo's other spelling of db[name]; other attributes of other "db" objects (an
        # sqlite3 connection's execute, a DICOM dataset's PatientID) are not collection names.
        return ast.Constant(node.attr)
    return None


def collections_named(path: Path) -> set[str]:
    """Collection names a file uses on a database (subscript, attribute or ``get_collection``); a name that is no
    registry constant is returned as ``?<expression>`` so that the test names it."""
    found: set[str] = set()
    module_strings = {t.id: n.value.value for n in ast.walk(ast.parse(path.read_text("utf-8")))
                      if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
                      for t in n.targets if isinstance(t, ast.Name)}
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        key = _named_collection(node)
        if key is None:
            continue
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


@pytest.mark.parametrize("use", [
    'db["catalogue_studies_v2"].find({})', 'db.get_collection("catalogue_shadow")', 'self.db.catalogue_shadow.find()',
    'NAME = "catalogue_shadow"\nx = database[NAME]', 'CATALOGUE_STUDIES = "other"\nx = db[CATALOGUE_STUDIES]',
])
def test_the_scan_reports_a_collection_missing_from_the_registry(tmp_path, use):
    # The scan of the real code above finds nothing missing; this proves it would (a planted use, each form).
    planted = tmp_path / "planted.py"
    planted.write_text(use + "\n", "utf-8")
    used = _scan_outside_root(planted)
    assert used - set(collections.ALL), use


def _scan_outside_root(path: Path) -> set[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return collections_named(path)
    finally:
        ROOT = saved


def test_the_scan_accepts_registered_names_and_database_methods(tmp_path):
    planted = tmp_path / "fine.py"
    planted.write_text("from eucaim_node.store import collections\n"
                       "x = db[collections.CATALOGUE_STUDIES]\ny = db.command('ping')\nz = db.name\n", "utf-8")
    assert _scan_outside_root(planted) == {collections.CATALOGUE_STUDIES}


def test_the_grants_name_only_registered_collections():
    granted = {name for grants in access.GRANTS.values() for name in grants}
    assert sorted(granted - set(collections.ALL)) == []


def test_the_withdrawal_list_is_registered():
    assert set(collections.WITHDRAWAL_LIST) <= set(collections.ALL)


def test_the_registry_lists_each_constant_once():
    assert sorted(collections.ALL) == sorted(set(CONSTANTS[n] for n in CONSTANTS if n not in ("ALL",)))
    assert len(set(collections.ALL)) == len(collections.ALL)


#: The catalogue's reader adapter, shared by catalogue-sync, the materialiser and the CLI: each calls only the
#: methods its grants allow (catalogue-sync and the materialiser never read series); tested on its own below.
CATALOGUE_READER = ROOT / "libs/catalogue/src/eucaim_node/catalogue/reader.py"


@pytest.mark.parametrize("principal", sorted(CODE_OF))
def test_each_principal_is_granted_what_its_code_touches(principal):
    files = [p for p in _python_files(*CODE_OF[principal]) if p != CATALOGUE_READER]
    used = set().union(*(collections_named(p) for p in files))
    assert used, f"no collection found in the code of {principal}"
    assert sorted(used - set(access.GRANTS[principal])) == []


def test_the_catalogue_reader_reads_what_its_readers_may_read():
    needs = {"catalogue-sync": {collections.CATALOGUE_STUDIES, collections.CATALOGUE_SUBJECTS},  # parts, search
             "materialiser": {collections.CATALOGUE_STUDIES, collections.CATALOGUE_SUBJECTS},    # eForms
             "cli": {collections.CATALOGUE_STUDIES, collections.CATALOGUE_SERIES}}               # search, datasets
    assert collections_named(CATALOGUE_READER) == set().union(*needs.values())
    for principal, collections_read in needs.items():
        assert collections_read <= access.readable(principal), principal


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
