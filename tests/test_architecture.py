"""The dependency rules of docs/architecture.md and the lint rules, checked on every `make test-unit`.

The rules themselves live in pyproject.toml (``[tool.importlinter]``, ``[tool.ruff]``). The hostile
half copies the sources into a temporary tree, plants one forbidden import, and checks that the same
contracts then fail and name it: a rule that cannot fail would be no rule.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def source_roots(base: Path) -> list[Path]:
    """Every workspace member's ``src`` directory under `base` (libs/* and services/*)."""
    return sorted(p for p in (*base.glob("libs/*/src"), *base.glob("services/*/src")) if (p / "eucaim_node").is_dir())


def lint_imports(cwd: Path, python_path: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    """Run import-linter in `cwd`; with `python_path`, over those source trees instead of the installed ones."""
    if python_path is None:
        command = [str(BIN / "lint-imports"), "--no-cache"]
        env = dict(os.environ)
    else:
        # -S: no site processing, so the workspace's editable .pth entries do not add the real sources
        # beside the copies; site-packages is on the path only for import-linter itself.
        command = [sys.executable, "-S", "-c", "import sys; from importlinter.cli import lint_imports_command; "
                   "sys.argv = ['lint-imports', '--no-cache']; sys.exit(lint_imports_command())"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, [*python_path, sysconfig.get_paths()["purelib"]])))
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300)


def test_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


def test_ruff_finds_nothing() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "--output-format", "concise", "."], cwd=ROOT,
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def copied_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tree")
    for src in source_roots(ROOT):
        target = base / src.relative_to(ROOT)
        shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", base / "pyproject.toml")
    return base


@pytest.mark.parametrize(("module", "planted", "contract"), [
    ("libs/deid/src/eucaim_node/deid/_planted.py", "import httpx", "de-identification library is pure"),
    ("libs/deid/src/eucaim_node/deid/_planted.py", "import pymongo", "de-identification library is pure"),
    ("libs/deid/src/eucaim_node/deid/_planted.py", "import aiokafka", "de-identification library is pure"),
    ("libs/deid/src/eucaim_node/deid/_planted.py", "import orthanc_api_client", "de-identification library is pure"),
    ("services/metadata/src/eucaim_node/metadata/_planted.py", "import eucaim_node.anonymisation.config",
     "Services are independent"),
    ("services/reception/src/eucaim_node/reception/core/_planted.py",
     "from eucaim_node.reception.adapters import ledger", "core (pure logic) does not import its adapters"),
    ("libs/runtime/src/eucaim_node/runtime/_planted.py", "import eucaim_node.deid",
     "runtime does not depend on the de-identification"),
    ("libs/ledger/src/eucaim_node/ledger/_planted.py", "import eucaim_node.runtime",
     "ledger does not depend on the service runtime"),
    ("libs/events/src/eucaim_node/events/_planted.py", "import eucaim_node.store", "Events are message models only"),
    ("services/catalogue_sync/src/eucaim_node/catalogue_sync/core/outbox.py", "import httpx",
     "core (pure logic) does not import its adapters"),
    ("libs/cli/src/eucaim_node/cli/audit.py", "from eucaim_node.store import collections",
     "audit commands reach the ledger only through the ledger library"),
    ("libs/store/src/eucaim_node/store/_planted.py", "import eucaim_node.catalogue_sync", "Libraries do not import services"),
    # The engine imports structured; structured importing the engine back is the cycle that was.
    ("libs/deid/src/eucaim_node/deid/structured.py", "from . import engine", "No import cycles between the modules"),
])
def test_a_planted_forbidden_import_breaks_its_contract(copied_tree: Path, module: str, planted: str, contract: str) -> None:
    path = copied_tree / module
    original = path.read_text() if path.exists() else None
    path.write_text((original or "") + "\n" + planted + "\n")
    try:
        result = lint_imports(copied_tree, source_roots(copied_tree))
    finally:
        path.write_text(original) if original is not None else path.unlink()
    assert result.returncode != 0, result.stdout
    broken = " ".join(result.stdout.split("Broken contracts", 1)[-1].split())
    assert contract in broken, result.stdout
    assert Path(module).stem in broken, result.stdout  # the report names the offending module


def contract(name_start: str) -> dict:
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(name_start))


def packages_under(folder: str) -> set[str]:
    return {f"eucaim_node.{p.name}" for p in ROOT.glob(f"{folder}/*/src/eucaim_node/*") if (p / "__init__.py").exists()}


def test_every_service_is_in_the_independence_contract() -> None:
    """A new service under services/ is covered by the rules only once it is listed; this says so."""
    listed = set(contract("Services are independent")["modules"])
    assert packages_under("services") <= listed, f"add to [tool.importlinter] in pyproject.toml: {packages_under('services') - listed}"


def test_every_library_is_forbidden_to_import_services() -> None:
    rule = contract("Libraries do not import services")
    edge = {"eucaim_node.cli", "eucaim_node.stack"}  # the operator's edge: it starts and drives the services
    libraries = packages_under("libs") - edge
    assert libraries <= set(rule["source_modules"]), f"add to source_modules: {libraries - set(rule['source_modules'])}"
    assert packages_under("services") <= set(rule["forbidden_modules"]), "add the new service to forbidden_modules"
