"""The local FerretDB 1.24 as secure as it can be: TLS only, SCRAM authentication, one user per principal.

What FerretDB 1.24 (SQLite backend) enforces, tried against the binary (decision 0075):

* with ``--test-enable-new-auth`` every command except the handshake ones (hello, ping, saslStart, ...)
  needs a completed SCRAM-SHA-256 (or -1) conversation: no credentials or a wrong password is refused;
* ``--listen-addr=`` with ``--listen-tls`` leaves only the TLS listener: a plain TCP client is refused;
* ``--setup-username`` (password from ``FERRETDB_SETUP_PASSWORD``, so not on the command line) creates the
  first user in ``admin`` when that database does not exist yet;
* ``createUser`` accepts only ``roles: []`` and there is no ``createRole``: roles are not enforced, so any
  authenticated user may read and write every collection (and manage users). Least privilege is enforced
  by MongoDB in production only (``eucaim_node.store.access``, ``scripts/mongo_users.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pymongo

from .settings import StackSettings
from .tls import Issued


def ferretdb_command(settings: StackSettings, binary: Path, home: Path, certificate: Issued, admin: str) -> list[str]:
    return [
        str(binary),
        "--handler=sqlite",
        f"--sqlite-url=file:{home / 'data'}/",
        f"--state-dir={home}",
        "--listen-addr=",  # no plain TCP listener: TLS only
        f"--listen-tls={settings.host}:{settings.ferretdb_port}",
        f"--listen-tls-cert-file={certificate.certificate}",
        f"--listen-tls-key-file={certificate.key}",
        "--test-enable-new-auth",  # SCRAM authentication on every command (FerretDB 1.x: behind this flag)
        "--setup-database=admin",
        f"--setup-username={admin}",
        "--telemetry=disable",
        "--debug-addr=-",
        "--log-level=info",
        "--log-format=text",
    ]


def provision_users(client: pymongo.MongoClient[dict[str, Any]], passwords: Mapping[str, str]) -> list[str]:
    """Create each user that is missing and set every password to its file's (rotation); return those created.

    ``client`` is authenticated as the admin. Users live in ``admin`` like MongoDB's; FerretDB refuses roles.
    """
    admin = client.admin
    existing = {user["user"] for user in admin.command("usersInfo")["users"]}
    created = []
    for username, password in passwords.items():
        if username in existing:
            admin.command("updateUser", username, pwd=password)
        else:
            admin.command("createUser", username, pwd=password, roles=[], mechanisms=["SCRAM-SHA-256"])
            created.append(username)
    return created
