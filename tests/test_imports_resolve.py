"""Every ``from eucaim_node… import name`` in the node's code resolves, function-level imports included.

Imports inside functions (kept lazy so a command starts fast) are not run by importing a module: when a move left
one pointing at a name that no longer exists (``readiness`` importing ``verify_ledger`` from ``cli.audit`` after it
moved to the ledger library), only the command itself failed, at run time. This reads every import statement and
resolves it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = (*sorted(ROOT.glob("services/*/src")), *sorted(ROOT.glob("libs/*/src")))
LOOSE = (ROOT / "scripts", ROOT / "tests")


def _resolves(module: str, name: str) -> bool:
    try:
        found = importlib.import_module(module)
    except ImportError:
        return False
    if name == "*" or hasattr(found, name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")
    except ImportError:
        return False
    return True


def _module_of(node: ast.ImportFrom, path: Path, src: Path | None) -> str | None:
    """The absolute module an import statement names (None: not the node's own code)."""
    if node.level == 0:
        return node.module if node.module and node.module.split(".")[0] == "eucaim_node" else None
    if src is None:
        return None
    package = list(path.relative_to(src).with_suffix("").parts[:-1])
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def unresolved(path: Path, src: Path | None) -> list[str]:
    missing = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and (module := _module_of(node, path, src)):
            missing += [f"{path}:{node.lineno} {module}.{alias.name}"
                        for alias in node.names if not _resolves(module, alias.name)]
    return missing


def test_every_import_of_the_nodes_code_resolves_function_level_ones_included():
    found = [m for src in PACKAGES for p in src.rglob("*.py") for m in unresolved(p, src)]
    found += [m for d in LOOSE for p in d.rglob("*.py") for m in unresolved(p, None)]
    assert found == []


def test_a_planted_stale_function_level_import_is_found(tmp_path: Path) -> None:
    src = tmp_path / "src"
    module = src / "eucaim_node" / "cli" / "planted.py"
    module.parent.mkdir(parents=True)
    module.write_text("def check():\n    from .audit import verify_ledger\n"
                      "    from eucaim_node.ledger.verify import verify_ledger as fine\n")
    assert [m.rsplit(" ", 1)[1] for m in unresolved(module, src)] == ["eucaim_node.cli.audit.verify_ledger"]
