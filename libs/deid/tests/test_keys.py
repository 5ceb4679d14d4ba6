from pathlib import Path

import pytest
from eucaim_node.deid import KeyFileError, load_key


def test_hex_text_key_loses_only_its_line_ending(tmp_path: Path) -> None:
    """The text form: hex digits and at most one LF or CRLF; the key is the text itself."""
    path = tmp_path / "key"
    hex_key = bytes(range(32)).hex().encode()
    for ending in (b"", b"\n", b"\r\n"):
        path.write_bytes(hex_key + ending)
        assert load_key(path) == hex_key


#: Deterministic 32-byte binary keys ending in CR/LF bytes (the 1-in-128 case that was cut short).
BINARY_KEYS_ENDING_IN_CR_LF = [
    bytes(range(31)) + b"\n",
    bytes(range(31)) + b"\r",
    bytes(range(30)) + b"\r\n",
    bytes(range(100, 130)) + b"\n\n",
    b"\xff" * 16 + b"\r\n" * 8,
    b"\n" * 32,
    b"z" * 31 + b"\n",  # one line ending after non-hex text: binary, every byte kept
    b"0123456789abcdef" * 2 + b"\n\n",  # hex, but two line endings: binary (33 + 1 bytes)
]


@pytest.mark.parametrize("key", BINARY_KEYS_ENDING_IN_CR_LF, ids=range(len(BINARY_KEYS_ENDING_IN_CR_LF)))
def test_binary_key_is_read_exactly(tmp_path: Path, key: bytes) -> None:
    path = tmp_path / "key"
    path.write_bytes(key)
    assert load_key(path) == key


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
