"""The stack's secrets: generated once per state dir, mode 0600, never printed."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from eucaim_node.ledger import load_private_key, public_pem, verifier_key
from eucaim_node.store.access import PRINCIPALS

from .configs import (
    MONGO_ADMIN,
    ORTHANC_INSTANCES,
    audit_log_origin,
    audit_log_public_key_file,
    audit_signing_key_file,
    hmac_key_file,
    jobs_review_token_file,
    jobs_token_file,
    mongo_password_file,
    orthanc_password_file,
    search_token_file,
    secrets_dir,
    witness_dir,
    witness_token_file,
    write_if_changed,
)
from .settings import StackSettings
from .tls import ensure_ca


def _create_once(path: Path, make: Callable[[], bytes]) -> bool:
    """Create ``path`` with mode 0600 unless it exists; True if it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return False
    try:
        os.write(fd, make())
    finally:
        os.close(fd)
    return True


def new_password() -> bytes:
    return secrets.token_urlsafe(24).encode("ascii")


def ensure_secrets(settings: StackSettings) -> None:
    """Generate ``secrets/hmac.key`` (32 random bytes), one password per Orthanc, ``secrets/search-tokens``
    (one federated search client, ``local:<token>``), one MongoDB password per principal
    (``secrets/mongo-<principal>-password``, the FerretDB admin's included), ``secrets/witness-token`` and the
    stack's CA if absent; Kafka's broker key store and SCRAM passwords (:func:`kafka_security.ensure_kafka_secrets`);
    and the audit ledger's signing key (:func:`ensure_witnessed_log`)."""
    from .kafka_security import ensure_kafka_secrets

    directory = secrets_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    _create_once(hmac_key_file(settings), lambda: secrets.token_bytes(32))
    for instance in ORTHANC_INSTANCES:
        _create_once(orthanc_password_file(settings, instance), new_password)
    _create_once(search_token_file(settings), lambda: f"local:{secrets.token_urlsafe(32)}\n".encode("ascii"))
    _create_once(jobs_token_file(settings), lambda: f"local:{secrets.token_urlsafe(32)}\n".encode("ascii"))
    _create_once(jobs_review_token_file(settings),
                 lambda: f"local-reviewer:{secrets.token_urlsafe(32)}\n".encode("ascii"))
    for principal in (MONGO_ADMIN, *PRINCIPALS):
        _create_once(mongo_password_file(settings, principal), new_password)
    ensure_ca(directory)  # the stack's CA (``ca.pem``, ``ca.key``): clients of its TLS servers trust it
    ensure_kafka_secrets(settings)
    _create_once(witness_token_file(settings), lambda: secrets.token_urlsafe(32).encode("ascii"))
    ensure_witnessed_log(settings)


def ensure_witnessed_log(settings: StackSettings) -> None:
    """The audit ledger's signing key (created here, before the witness starts, so the witness can be told the
    log's public key) and the two public files derived from it: the witness's logs file and the PEM `audit verify`
    trusts."""
    key = load_private_key(audit_signing_key_file(settings), generate=True)
    public = key.public_key()
    home = witness_dir(settings)
    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    write_if_changed(home / "logs.txt", f"# logs this witness cosigns (signed-note verifier keys)\n"
                                         f"{verifier_key(audit_log_origin(settings), public)}\n")
    write_if_changed(audit_log_public_key_file(settings), public_pem(public))


def read_search_token(settings: StackSettings) -> str:
    """The local search client's token (the first line's), for the walkthrough and the tests."""
    return read_first_token(search_token_file(settings))


def read_first_token(path: Path) -> str:
    """The token of a ``name:token`` file's first line (the local client's), for the walkthrough and the tests."""
    return path.read_text(encoding="ascii").splitlines()[0].partition(":")[2]


def read_orthanc_password(settings: StackSettings, instance: str) -> str:
    return orthanc_password_file(settings, instance).read_text(encoding="ascii").strip()


def read_mongo_password(settings: StackSettings, principal: str) -> str:
    return mongo_password_file(settings, principal).read_text(encoding="ascii").strip()
