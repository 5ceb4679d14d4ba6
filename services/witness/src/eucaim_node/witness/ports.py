"""What the witness's HTTP interface needs from its state (the SQLite adapter in ``adapters/store.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .core.checkpoints import Accepted, Latest


class CheckpointStore(Protocol):
    """The latest cosigned checkpoint per log, its history and the refusals (synchronous: called in a thread)."""

    def latest(self, origin: str) -> Latest | None: ...

    def update(self, origin: str, decide: Callable[[Latest | None], Accepted], now: int) -> Accepted:
        """Run ``decide`` on the stored latest checkpoint and store what it accepts, atomically; ``decide`` raises
        to refuse, and nothing is written then."""
        ...

    def record_refusal(self, origin: str, status: int, reason: str, request: str, now: int) -> None: ...

    def origins(self) -> list[tuple[str, int]]: ...

    def close(self) -> None: ...
