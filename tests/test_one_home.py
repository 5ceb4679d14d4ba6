"""What issue 13 gave one home stays there: test support outside the shipped packages, one copy of reference data.

(The consumer groups' one home is held by tests/test_kafka_grants.py, the event IDs by libs/events' tests, the
backoff formula by libs/runtime's, the withdrawal list by libs/store's.)
"""

from __future__ import annotations

import hashlib
import re
import importlib.util
import subprocess
from pathlib import Path

from eucaim_node.catalogue.search import REQUEST_EXAMPLES_FILE
from eucaim_node.cli.readiness import LocalNodeProbe

ROOT = Path(__file__).resolve().parents[1]


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def production_sources() -> list[Path]:
    """What the image installs: the packages under libs/*/src and services/*/src (the Dockerfile copies no more)."""
    return [p for part in ("libs", "services") for p in (ROOT / part).glob("*/src/**/*.py")]


def test_the_shipped_packages_hold_no_test_support_and_do_not_import_it():
    assert importlib.util.find_spec("eucaim_node.telemetry.testing") is None
    assert importlib.util.find_spec("eucaim_test_support.otlp") is not None  # importable by the tests only
    offenders = [str(p.relative_to(ROOT)) for p in production_sources() if "eucaim_test_support" in p.read_text()]
    assert offenders == []
    assert not any(p.name in ("testing.py", "conftest.py") for p in production_sources())


def test_the_explorers_reference_requests_have_one_copy_in_the_repository():
    digest = hashlib.sha256(REQUEST_EXAMPLES_FILE.read_bytes()).hexdigest()
    copies = [p.relative_to(ROOT) for p in tracked_files() if p.suffix == ".json"
              and hashlib.sha256(p.read_bytes()).hexdigest() == digest]
    assert copies == [REQUEST_EXAMPLES_FILE.relative_to(ROOT)]


def test_the_readiness_report_reads_that_copy():
    examples = LocalNodeProbe.request_examples(None)  # reads no node: the file only
    assert {e["name"] for e in examples} >= {"eucaim_api_just_right"}
    assert any(e["eucaim"] for e in examples) and not all(e["eucaim"] for e in examples)


def test_the_cli_prints_its_errors_through_one_helper():
    """``error: <message>`` on standard error and the exit code: cli/operator.py's ``fail``, nowhere else."""
    cli = ROOT / "libs" / "cli" / "src" / "eucaim_node" / "cli"
    copies = [p.name for p in cli.glob("*.py") if p.name != "operator.py" and 'echo(f"error: ' in p.read_text()]
    assert copies == []


def test_retry_delays_have_one_formula():
    """Doubling delays and jitter are computed by runtime.backoff_delay only (the stack tool's readiness poll,
    which grows by half up to one second, is a poll, not a retry: decision 0128)."""
    pattern = re.compile(r"\b2(\.0)?\s*\*\*\s*[A-Za-z_(]|random\.uniform\(")  # 2**63 and the like: constants
    copies = [str(p.relative_to(ROOT)) for p in production_sources()
              if p.name != "backoff.py" and pattern.search(p.read_text())]
    assert copies == []
