import pytest
from pydantic import ValidationError

from eucaim_node.settings import NodeSettings, ReadableFile, read_secret


class _Example(NodeSettings):
    password_file: ReadableFile | None = None


def test_a_readable_secret_file_loads_and_reads_stripped(tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("EUCAIM_PASSWORD_FILE", str(secret))
    assert read_secret(_Example().password_file) == "s3cret"


def test_an_unreadable_secret_file_is_a_settings_error_naming_the_path(tmp_path):
    with pytest.raises(ValidationError, match="cannot read"):
        _Example(password_file=tmp_path / "missing")


def test_no_file_no_secret():
    assert read_secret(_Example().password_file) is None
