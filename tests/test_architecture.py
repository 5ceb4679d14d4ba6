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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def source_roots(base: Path) -> list[Path]:
    """Every workspace member's ``src`` directory under `base` (libs/* and services/*)."""
    return sorted(p for p in (*base.glob("libs/*/src"), *base.glob("services/*/src")) if (p / "eucaim_node").is_dir())


def lint_imports(cwd: Path, python_path: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if python_path is not None:
        # Earlier sys.path entries win for a regular package, so the copies shadow the installed sources.
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in python_path)
    return subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False, timeout=300)


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


@pytest.mark.parametrize(("package", "planted", "contract"), [
    ("libs/deid/src/eucaim_node/deid", "import httpx", "de-identification library is pure"),
    ("libs/deid/src/eucaim_node/deid", "import pymongo", "de-identification library is pure"),
    ("libs/deid/src/eucaim_node/deid", "import aiokafka", "de-identification library is pure"),
    ("libs/deid/src/eucaim_node/deid", "import orthanc_api_client", "de-identification library is pure"),
    ("services/metadata/src/eucaim_node/metadata", "import eucaim_node.anonymisation.config", "Services are independent"),
    ("services/reception/src/eucaim_node/reception/core", "from eucaim_node.reception.adapters import ledger",
     "core (pure logic) does not import its adapters"),
    ("libs/runtime/src/eucaim_node/runtime", "import eucaim_node.deid", "runtime does not depend on the de-identification"),
    ("libs/ledger/src/eucaim_node/ledger", "import eucaim_node.runtime", "ledger does not depend on the service runtime"),
    ("libs/events/src/eucaim_node/events", "import eucaim_node.store", "Events are message models only"),
    ("libs/store/src/eucaim_node/store", "import eucaim_node.catalogue_sync", "Libraries do not import services"),
])
def test_a_planted_forbidden_import_breaks_its_contract(copied_tree: Path, package: str, planted: str, contract: str) -> None:
    probe = copied_tree / package / "_planted_violation.py"
    assert probe.parent.is_dir(), probe.parent
    probe.write_text(planted + "\n")
    try:
        result = lint_imports(copied_tree, source_roots(copied_tree))
    finally:
        probe.unlink()
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in " ".join(broken.split()), result.stdout
    assert "_planted_violation" in broken, result.stdout
