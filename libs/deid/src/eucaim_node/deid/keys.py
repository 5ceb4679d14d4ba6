"""Loading the node's de-identification key.

The key is the secret behind every keyed pseudonym (PS3.15 Annex E, action
``U`` and the patient pseudonym). It is read from a file and never logged,
printed or included in an exception message.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MIN_KEY_BYTES = 32
#: The one text form: hex digits, then at most one line ending (``openssl rand -hex 32 > key``).
_HEX_TEXT_KEY = re.compile(rb"([0-9A-Fa-f]+)(?:\r?\n)?")


class KeyFileError(ValueError):
    """The key file is missing, unreadable or shorter than :data:`MIN_KEY_BYTES`.

    A ValueError, so a service's start-up (eucaim_node.runtime) reports it as a configuration error
    without importing this library.

    Messages name the path and the problem, never the key material.
    """


def load_key(path: str | os.PathLike[str]) -> bytes:
    """Return the key stored in the file at `path`, read exactly.

    Two forms, told apart by the whole file:

    - **hex text**: the file is one or more hex digits (``0-9 a-f A-F``) followed by at most one
      line ending (LF or CRLF), as ``openssl rand -hex 32 > key`` writes. The key is the hex text
      without that line ending (its ASCII bytes, not decoded: existing text keys keep their
      pseudonyms).
    - **binary**: any other file. The key is every byte of it, including trailing CR and LF
      bytes (a random binary key ends in one of them about once in 128).

    Raises :class:`KeyFileError` if the file is missing, unreadable, or the key has fewer than
    32 bytes.
    """
    key_path = Path(path)
    try:
        raw = key_path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"key file not found: {key_path}") from None
    except IsADirectoryError:
        raise KeyFileError(f"key file is a directory: {key_path}") from None
    except OSError as exc:
        raise KeyFileError(f"key file unreadable: {key_path} ({exc.strerror})") from None
    text = _HEX_TEXT_KEY.fullmatch(raw)
    key = text[1] if text else raw
    check_key(key, source=str(key_path))
    return key


def check_key(key: bytes, *, source: str = "key") -> None:
    """Raise :class:`KeyFileError` unless `key` is bytes of at least 32 bytes."""
    if not isinstance(key, bytes | bytearray):
        raise KeyFileError(f"{source}: key must be bytes")
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(
            f"{source}: key too short ({len(key)} bytes; at least {MIN_KEY_BYTES} required)"
        )
