"""MongoDB access through PyMongo's native async API (``AsyncMongoClient``).

Only what both MongoDB and FerretDB 1.24 (the local, embedded store) support is used:
single-document atomic writes, upserts, unique indexes, ``count_documents``, ``distinct``.
No multi-document transactions, no change streams. Idempotency rests on deterministic
``_id`` values, so a redelivered event writes nothing new.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.settings import NodeSettings

__all__ = ["MongoSettings", "connect", "insert_once", "ping"]


class MongoSettings(NodeSettings):
    mongo_url: SecretStr = Field(default=SecretStr("mongodb://127.0.0.1:27017"), description="May hold credentials: a secret.")
    mongo_database: str = Field(default="eucaim_node", pattern=r"^[A-Za-z0-9_-]{1,63}$")


def connect(settings: MongoSettings, *, app_name: str) -> tuple[AsyncMongoClient, AsyncDatabase]:
    """Client and database; the client connects lazily, so this never blocks or fails."""
    client: AsyncMongoClient = AsyncMongoClient(
        settings.mongo_url.get_secret_value(),
        appname=f"eucaim-node-{app_name}",
        serverSelectionTimeoutMS=5000,
        tz_aware=True,
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
