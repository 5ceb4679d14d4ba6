from pathlib import Path

import pytest
from eucaim_node.deid import KeyFileError, load_key


def test_load_key_strips_newline(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"a" * 40 + b"\n")
    assert load_key(path) == b"a" * 40


def test_missing_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not found"):
        load_key(tmp_path / "nope")


def test_short_key_message_has_no_key(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"secretvalue")
    with pytest.raises(KeyFileError) as info:
        load_key(path)
    assert "secretvalue" not in str(info.value)
    assert "too short" in str(info.value)


def test_directory_is_not_a_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        load_key(tmp_path)
