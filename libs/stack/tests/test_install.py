"""Install decisions with the system calls replaced (nothing is installed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eucaim_node.stack import ComponentFailed, StackSettings
from eucaim_node.stack import install


@pytest.fixture()
def apt_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    missing = [["/usr/sbin/Orthanc", "storescu"]]

    def fake_run(component: str, command: list[str], **kwargs: object) -> str:
        calls.append(command)
        if command[:2] == ["apt-get", "install"]:
            missing[0] = []
        return ""

    monkeypatch.setattr(install, "_run", fake_run)
    monkeypatch.setattr(install, "_debian_missing", lambda: list(missing[0]))
    monkeypatch.setattr(install, "_apt_updated", False)
    monkeypatch.setattr(install.shutil, "which", lambda name: f"/usr/bin/{name}")
    return calls


def test_missing_debian_binaries_as_root_run_apt_once(monkeypatch: pytest.MonkeyPatch,
                                                      apt_calls: list[list[str]]) -> None:
    monkeypatch.setattr(install.os, "geteuid", lambda: 0)
    install.ensure_debian_packages()
    assert apt_calls == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "orthanc", "orthanc-dicomweb", "dcmtk",
         "dicom3tools", "tesseract-ocr"],
    ]
    install.ensure_debian_packages()  # nothing missing any more: no second apt run
    assert len(apt_calls) == 2


def test_missing_debian_binaries_without_root_name_the_packages(monkeypatch: pytest.MonkeyPatch,
                                                                apt_calls: list[list[str]]) -> None:
    monkeypatch.setattr(install.os, "geteuid", lambda: 1000)
    with pytest.raises(ComponentFailed) as failure:
        install.ensure_debian_packages("orthanc-clinical")
    message = str(failure.value)
    assert message.startswith("orthanc-clinical:")
    assert "orthanc orthanc-dicomweb dcmtk dicom3tools tesseract-ocr" in message
    assert "/usr/sbin/Orthanc" in message
    assert apt_calls == []


def test_kafka_needs_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(install.shutil, "which", lambda name: None if name == "mvn" else f"/usr/bin/{name}")
    settings = StackSettings(cache_dir=tmp_path, state_dir=tmp_path / "s")
    with pytest.raises(ComponentFailed, match="Maven"):
        install.ensure_kafka(settings)


def test_kafka_cache_hit_skips_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = StackSettings(cache_dir=tmp_path, state_dir=tmp_path / "s", kafka_version="9.9.9")
    libs = install.kafka_libs_dir(settings)
    libs.mkdir(parents=True)
    (libs.parent / ".complete").write_text("{}")
    monkeypatch.setattr(install, "_run", lambda *a, **k: pytest.fail("maven must not run on a cache hit"))
    assert install.ensure_kafka(settings) == tmp_path / "kafka-9.9.9" / "libs"


def test_ferretdb_needs_go_when_the_binary_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(install.shutil, "which", lambda name: None if name == "go" else f"/usr/bin/{name}")
    settings = StackSettings(cache_dir=tmp_path, state_dir=tmp_path / "s")
    with pytest.raises(ComponentFailed, match="Go"):
        install.ensure_ferretdb(settings)


def test_a_binary_reporting_another_version_is_not_accepted(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "ferretdb"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'version: v0.0.1'\n")
    fake.chmod(0o755)
    assert install._ferretdb_version(fake) == "v0.0.1"
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\necho 'panic: Invalid build/version/version.txt' >&2; exit 2\n")
    broken.chmod(0o755)
    assert install._ferretdb_version(broken) is None
