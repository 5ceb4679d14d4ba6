"""The studies the federated search reads, held in memory and refreshed part by part (decision 0092).

FerretDB 1.24 on SQLite decodes every study document for a search's filter: at 10,000 studies a search took
about a second. The collection parts (decision 0091) already hold each study's search fields (the entries'
``rows``), under a revision that grows on every change. Before each search the index reads the small
totals documents of the published collections' parts (their committed revisions), fetches only the parts
whose revision moved (a revision's content never changes), and evaluates the filter in memory (``eucaim_node.catalogue.matching``). A search
therefore sees every change catalogue-sync has folded into the parts (the same state the collection
aggregates show), on any replica, with no invalidation message.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from eucaim_node.store import collections

from ..core.parts import PARTS
from .collection_store import content_id, part_id

#: Rounds of reading the parts' revisions before a search gives up (each round is lost only to a concurrent commit).
READ_ATTEMPTS = 5


class SearchIndex:
    def __init__(self, db: AsyncDatabase) -> None:
        self._parts = db[collections.CATALOGUE_COLLECTION_PARTS]
        self._totals = db[collections.CATALOGUE_COLLECTION_PART_TOTALS]
        self._cached: dict[str, tuple[int, list[dict[str, Any]]]] = {}  # part id → (revision, rows)
        self._lock = asyncio.Lock()

    async def rows(self, collection_ids: list[str]) -> list[dict[str, Any]]:
        """Every study row of these collections, as of the newest committed part revisions."""
        ids = [part_id(c, n) for c in collection_ids for n in range(PARTS)]
        async with self._lock:
            for _ in range(READ_ATTEMPTS):
                revisions = {d["_id"]: d["revision"]
                             async for d in self._totals.find({"_id": {"$in": ids}}, {"revision": 1})}
                stale = [i for i, revision in revisions.items() if self._cached.get(i, (-1,))[0] != revision]
                found = await asyncio.gather(*(self._parts.find_one({"_id": content_id(i, revisions[i])})
                                               for i in stale))
                for part in filter(None, found):
                    self._cached[part["part"]] = (part["revision"], [r for e in part["entries"] for r in e["rows"]])
                if all(found):
                    break
                # A newer revision was committed (and this one deleted) meanwhile: read the revisions again.
            else:
                raise RuntimeError("collection parts kept changing while the search read them")
            return [row for i in ids if i in revisions for row in self._cached[i][1]]
