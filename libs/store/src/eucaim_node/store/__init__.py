"""MongoDB access through PyMongo's native async API (``AsyncMongoClient``).

Only what both MongoDB and FerretDB 1.24 (the local, embedded store) support is used:
single-document atomic writes, upserts, unique indexes, ``count_documents``, ``distinct``.
No multi-document transactions, no change streams. Idempotency rests on deterministic
``_id`` values, so a redelivered event writes nothing new.

Secure by default: a connection uses TLS and a user of its own (SCRAM-SHA-256; the password is read
from a file, never from the environment), and refuses to connect otherwise unless the setting
``EUCAIM_MONGO_INSECURE_PLAINTEXT`` says so. Each service's user holds only the role that
:mod:`eucaim_node.store.access` declares for it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, model_validator
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.settings import NodeSettings, ReadableFile, read_secret

__all__ = ["MongoSettings", "connect", "insert_once", "ping"]


class MongoSettings(NodeSettings):
    mongo_url: SecretStr = Field(default=SecretStr("mongodb://127.0.0.1:27017"), description="May hold credentials: a secret.")
    mongo_database: str = Field(default="eucaim_node", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    mongo_username: str | None = Field(default=None, min_length=1, description="This service's own MongoDB user.")
    mongo_password_file: ReadableFile | None = Field(default=None, description="File holding that user's password.")
    mongo_auth_source: str = Field(default="admin", description="Database that holds the user (MongoDB's authSource).")
    mongo_tls_ca_file: ReadableFile | None = Field(
        default=None, description="CA bundle for MongoDB's TLS certificate (default: the system's).")
    mongo_insecure_plaintext: bool = Field(
        default=False, description="Allow MongoDB without TLS and without credentials: a throwaway database only.")

    @model_validator(mode="after")
    def _credentials_complete(self) -> MongoSettings:
        if (self.mongo_username is None) != (self.mongo_password_file is None):
            raise ValueError("EUCAIM_MONGO_USERNAME and EUCAIM_MONGO_PASSWORD_FILE go together: set both or neither")
        if self.mongo_username is not None and _url_has_credentials(self.mongo_url.get_secret_value()):
            raise ValueError("EUCAIM_MONGO_URL carries credentials and EUCAIM_MONGO_USERNAME is set: use one of them")
        return self

    def mongo_client_options(self) -> dict[str, Any]:
        """Keyword arguments for (Async)MongoClient: TLS and this service's user, or a ValueError naming the setting.

        Called when a client is made (at a service's start), so a node without credentials or TLS never starts.
        """
        options: dict[str, Any] = {}
        has_user = self.mongo_username is not None or _url_has_credentials(self.mongo_url.get_secret_value())
        if not self.mongo_insecure_plaintext:
            if not has_user:
                raise ValueError("MongoDB needs a user: set EUCAIM_MONGO_USERNAME and EUCAIM_MONGO_PASSWORD_FILE "
                                 "(EUCAIM_MONGO_INSECURE_PLAINTEXT=true allows none, for a throwaway database)")
            options["tls"] = True
        if self.mongo_tls_ca_file is not None:
            options.update(tls=True, tlsCAFile=str(self.mongo_tls_ca_file))
        if self.mongo_username is not None:
            options.update(username=self.mongo_username, password=read_secret(self.mongo_password_file),
                           authSource=self.mongo_auth_source, authMechanism="SCRAM-SHA-256")
        return options


def _url_has_credentials(url: str) -> bool:
    """True if a connection string has a user part (``mongodb://user:pass@host``)."""
    authority = url.partition("://")[2].split("/", 1)[0]
    return "@" in authority


def connect(settings: MongoSettings, *, app_name: str) -> tuple[AsyncMongoClient, AsyncDatabase]:
    """Client and database; the client connects lazily, so this never blocks, but a wrong setting is a ValueError."""
    client: AsyncMongoClient = AsyncMongoClient(
        settings.mongo_url.get_secret_value(),
        appname=f"eucaim-node-{app_name}",
        serverSelectionTimeoutMS=5000,
        tz_aware=True,
        **settings.mongo_client_options(),
    )
    return client, client[settings.mongo_database]


async def ping(db: AsyncDatabase) -> bool:
    await db.command("ping")
    return True


async def insert_once(collection: AsyncCollection, document: dict[str, Any]) -> bool:
    """Insert ``document`` unless its ``_id`` exists; True when it was new."""
    try:
        await collection.insert_one(document)
    except DuplicateKeyError:
        return False
    return True
