"""Jobs in MongoDB: one document per job, ``_id`` its uid, unique per (owner, name)."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from eucaim_node.store.collections import JOBS

from ...core.model import FINAL_STATES, Job
from ...ports import DuplicateJob


class MongoJobStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self._coll = db[JOBS]

    async def ensure_indexes(self) -> None:
        await self._coll.create_index([("owner", ASCENDING), ("name", ASCENDING)], unique=True)
        await self._coll.create_index("state")
        await self._coll.create_index([("owner", ASCENDING), ("created_at", DESCENDING)])

    async def insert(self, job: Job) -> None:
        try:
            await self._coll.insert_one(job.to_document())
        except DuplicateKeyError:
            raise DuplicateJob(job.name) from None

    async def save(self, job: Job) -> None:
        await self._coll.replace_one({"_id": job.uid}, job.to_document())

    async def by_name(self, owner: str, name: str) -> Job | None:
        doc = await self._coll.find_one({"owner": owner, "name": name})
        return None if doc is None else Job.from_document(doc)

    async def by_uid(self, uid: str) -> Job | None:
        doc = await self._coll.find_one({"_id": uid})
        return None if doc is None else Job.from_document(doc)

    async def unfinished(self) -> list[Job]:
        final = [str(s) for s in FINAL_STATES]
        return [Job.from_document(d) async for d in self._coll.find({"state": {"$nin": final}})]

    async def recent(self, limit: int, owner: str | None = None) -> list[Job]:
        query = {} if owner is None else {"owner": owner}
        return [Job.from_document(d) async for d in self._coll.find(query).sort("created_at", DESCENDING).limit(limit)]



