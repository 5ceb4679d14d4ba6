"""The `stack` CLI commands against a profile where nothing runs (no servers needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from eucaim_node.cli.stack import app, status_command
from eucaim_node.stack import PORT_FIELDS, StackSettings


@pytest.fixture()
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> typer.Typer:
    monkeypatch.setenv("EUCAIM_STACK_STATE_DIR", str(tmp_path / "state"))
    for field in PORT_FIELDS:  # ports where nothing listens
        monkeypatch.setenv(f"EUCAIM_STACK_{field.upper()}", str(getattr(StackSettings(), field) + 30000))
    root = typer.Typer()
    root.add_typer(app, name="stack")
    root.command("status")(status_command)
    return root


def test_status_json(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["profile"] == "local"
    assert document["state_dir"] == str(tmp_path / "state")
    assert document["healthy"] is False
    kafka = document["components"]["kafka"]
    assert kafka == {
        "name": "kafka",
        "kind": "infrastructure",
        "endpoints": {"bootstrap": "127.0.0.1:39092", "controller": "127.0.0.1:39093"},
        "pid": None,
        "running": False,
        "healthy": False,
        "log": str(tmp_path / "state" / "logs" / "kafka.log"),
    }
    assert set(document["components"]) >= {"orthanc-clinical", "orthanc-research", "ferretdb", "reception"}


def test_status_table_and_stack_group(cli: typer.Typer) -> None:
    table = CliRunner().invoke(cli, ["stack", "status"])
    assert table.exit_code == 0, table.output
    assert "orthanc-clinical" in table.output and "CLINICAL@127.0.0.1:34242" in table.output
    down = CliRunner().invoke(cli, ["stack", "down"])
    assert down.exit_code == 0 and "nothing was running" in down.output
    unknown = CliRunner().invoke(cli, ["stack", "restart", "nope"])
    assert unknown.exit_code == 1
