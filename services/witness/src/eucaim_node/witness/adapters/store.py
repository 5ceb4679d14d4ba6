"""The witness's own storage: one SQLite file in its state directory (never the node's database).

``latest`` holds, per origin, the checkpoint last cosigned; ``history`` keeps every cosigned
checkpoint and ``refusals`` every refused one whose log signature verified (possible evidence of
log misbehaviour, tlog-witness "add-checkpoint"). Both are append-only by use.

The check of the old size and the update of ``latest`` are one ``BEGIN IMMEDIATE`` transaction
under a process-wide lock, so two concurrent submissions can never roll the witnessed size back
(the race tlog-witness describes).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..core.checkpoints import Accepted, Latest

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL,
    updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, size INTEGER NOT NULL, root BLOB NOT NULL,
    note TEXT NOT NULL, cosigned_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refusals (
    id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, status INTEGER NOT NULL, reason TEXT NOT NULL,
    request TEXT NOT NULL, refused_at INTEGER NOT NULL);
"""


class WitnessStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a cosignature is answered only after the state is on disk
        self._db.executescript(_SCHEMA)
        path.chmod(0o600)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def latest(self, origin: str) -> Latest | None:
        with self._lock:
            return self._latest(origin)

    def _latest(self, origin: str) -> Latest | None:
        row = self._db.execute("SELECT size, root, note FROM latest WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else Latest(origin, int(row[0]), bytes(row[1]), str(row[2]))

    def update(self, origin: str, decide: Callable[[Latest | None], Accepted], now: int) -> Accepted:
        """Run ``decide`` on the stored latest checkpoint and store what it accepts, atomically.

        ``decide`` raises to refuse; nothing is written then."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                accepted = decide(self._latest(origin))
                latest = accepted.latest
                self._db.execute(
                    "INSERT INTO latest (origin, size, root, note, updated_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(origin) DO UPDATE SET size = excluded.size, root = excluded.root, "
                    "note = excluded.note, updated_at = excluded.updated_at",
                    (origin, latest.size, latest.root, latest.note, now))
                self._db.execute("INSERT INTO history (origin, size, root, note, cosigned_at) VALUES (?, ?, ?, ?, ?)",
                                 (origin, latest.size, latest.root, latest.note, now))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return accepted

    def record_refusal(self, origin: str, status: int, reason: str, request: str, now: int) -> None:
        with self._lock:
            self._db.execute("INSERT INTO refusals (origin, status, reason, request, refused_at) VALUES (?, ?, ?, ?, ?)",
                             (origin, status, reason[:1000], request, now))

    def origins(self) -> list[tuple[str, int]]:
        with self._lock:
            return [(str(o), int(s)) for o, s in self._db.execute("SELECT origin, size FROM latest ORDER BY origin")]
