"""Apply an operator's :class:`DatasetCommand` to the dataset store, once, and say what happened.

The materialiser is the datasets' one writer: the CLI sends a command, this applies it (a compare-and-set on the
state it checked), records the outcome under the command's event ID for the CLI to read, and records the act in
the audit log with the EUCAIM action names. A redelivered command finds its outcome and changes nothing again;
a command whose change is already in the store (crash after the write, before the outcome) counts as applied.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eucaim_node.datasets import audit
from eucaim_node.datasets.access import open_grant_count
from eucaim_node.datasets.lifecycle import Act, IllegalTransition, may_delete, plan
from eucaim_node.datasets.model import Dataset, Grant, StudyRef, now
from eucaim_node.datasets.ports import DatasetStore, DuplicateDataset, StaleDataset
from eucaim_node.events import AccessRecorded, DatasetCommand

from ..ports import Outcomes

log = logging.getLogger("eucaim_node.materialiser.commands")
PRODUCER = "materialiser"
ACTS = {"release": Act.RELEASE, "publish": Act.PUBLISH, "invalidate": Act.INVALIDATE, "reactivate": Act.REACTIVATE}


class Refused(ValueError):
    """The command is not applied; the message is the one line the operator sees."""


@dataclass
class CommandApplier:
    store: DatasetStore
    outcomes: Outcomes
    publish: Callable[[AccessRecorded], Awaitable[None]]
    wake: Callable[[], None] = lambda: None

    async def apply(self, command: DatasetCommand) -> None:
        key = str(command.event_id)
        if await self.outcomes.get(key) is not None:
            return
        try:
            message, action, detail = await self._apply(command)
        except Refused as exc:
            await self._audit(command, self._action_of(command), "denied", reason=str(exc)[:300])
            await self.outcomes.record(key, ok=False, message=str(exc), dataset_id=command.dataset_id)
            log.info("dataset command refused", extra={"command": command.command, "dataset": command.dataset_id})
            return
        await self._audit(command, action, "success", **detail)
        await self.outcomes.record(key, ok=True, message=message, dataset_id=command.dataset_id)
        log.info("dataset command applied", extra={"command": command.command, "dataset": command.dataset_id})
        self.wake()

    @staticmethod
    def _action_of(command: DatasetCommand) -> str:
        return {"define": audit.CREATE_DATASET, "delete": audit.DELETE_DATASET}.get(command.command,
                                                                                    audit.UPDATE_DATASET)

    async def _audit(self, command: DatasetCommand, action: str, outcome: str, **detail) -> None:
        operation = ACTS[command.command].value if command.command in ACTS else {
            "grant": audit.GRANT_ACCESS, "revoke": audit.CLOSE_ACCESS}.get(command.command)
        await self.publish(audit.record(producer=PRODUCER, actor=command.actor, action=action,
                                        dataset_id=command.dataset_id, cause=f"command:{command.event_id}",
                                        outcome=outcome, operation=operation, **detail))

    async def _dataset(self, dataset_id: str) -> Dataset:
        dataset = await self.store.get(dataset_id)
        if dataset is None:
            raise Refused(f"no dataset {dataset_id}")
        return dataset

    async def _apply(self, command: DatasetCommand) -> tuple[str, str, dict]:
        handler = getattr(self, f"_{command.command}")
        return await handler(command)

    async def _define(self, command: DatasetCommand) -> tuple[str, str, dict]:
        definition = command.definition
        if definition is None:
            raise Refused("a define command needs a definition")
        existing = await self.store.get(command.dataset_id)
        if existing is None:
            same_name = [d for d in await self.store.by_name(definition.name) if not d.deleted]
            if same_name:
                raise Refused(f"a dataset named {definition.name!r} exists already ({same_name[0].id}); "
                              "choose another name")
            try:
                dataset = Dataset(
                    id=command.dataset_id, name=definition.name, description=definition.description,
                    project=definition.project, licence=definition.licence, purpose=definition.purpose,
                    author=command.actor, provenance=json.loads(definition.provenance),
                    studies=tuple(StudyRef(**s.model_dump()) for s in definition.studies))
            except ValueError as exc:
                raise Refused(f"invalid definition: {exc}") from None
            try:
                await self.store.insert(dataset)
            except DuplicateDataset:
                dataset = await self._dataset(command.dataset_id)
        else:
            dataset = existing
        return (f"created dataset {dataset.id} ({len(dataset.studies)} studies, {len(dataset.subjects)} subjects); "
                "materialisation pending", audit.CREATE_DATASET,
                {"studies": len(dataset.studies), "subjects": len(dataset.subjects), "version": dataset.version})

    async def _lifecycle(self, command: DatasetCommand) -> tuple[str, str, dict]:
        act = ACTS[command.command]
        dataset = await self._dataset(command.dataset_id)
        try:
            change = plan(dataset, act, at=now(), reason=command.reason)
        except IllegalTransition as exc:
            if _already(dataset, command):
                return f"{act.value.lower()}: already applied to {dataset.id}", audit.UPDATE_DATASET, {}
            raise Refused(str(exc)) from None
        try:
            await self.store.update(dataset.id, change.expect, {**change.updates, "last_command": str(command.event_id)})
        except StaleDataset as exc:
            raise Refused(str(exc)) from None
        return change.describe(dataset), audit.UPDATE_DATASET, {"reason": command.reason}

    _release = _publish = _invalidate = _reactivate = _lifecycle

    async def _grant(self, command: DatasetCommand) -> tuple[str, str, dict]:
        request = command.grant
        if request is None:
            raise Refused("a grant command needs the grant")
        dataset = await self._dataset(command.dataset_id)
        if dataset.deleted or dataset.invalidated:
            raise Refused(f"dataset {dataset.id} is {'deleted' if dataset.deleted else 'invalidated'}: no new access")
        if await self.store.get_grant(request.grant_id) is None:
            if request.valid_until <= max(request.valid_from, now()):
                raise Refused(f"the grant would be expired already (until {request.valid_until.isoformat()})")
            await self.store.add_grant(Grant(id=request.grant_id, dataset_id=dataset.id, grantee=request.grantee,
                                             valid_from=request.valid_from, valid_until=request.valid_until,
                                             granted_by=command.actor))
        return (f"granted {request.grantee} access to {dataset.id} until {request.valid_until.isoformat()} "
                f"(grant {request.grant_id})", audit.UPDATE_DATASET,
                {"grant": request.grant_id, "grantee": request.grantee, "until": request.valid_until.isoformat()})

    async def _revoke(self, command: DatasetCommand) -> tuple[str, str, dict]:
        grant = await self.store.get_grant(command.grant_id or "")
        if grant is None or grant.dataset_id != command.dataset_id:
            raise Refused(f"no grant {command.grant_id} on dataset {command.dataset_id}")
        if grant.closed_at is None:
            try:
                await self.store.close_grant(grant.id, at=now(), by=command.actor)
            except StaleDataset as exc:
                raise Refused(str(exc)) from None
        return (f"closed grant {grant.id} of {grant.grantee} on {grant.dataset_id}", audit.UPDATE_DATASET,
                {"grant": grant.id, "grantee": grant.grantee})

    async def _delete(self, command: DatasetCommand) -> tuple[str, str, dict]:
        dataset = await self._dataset(command.dataset_id)
        if dataset.deleted and _already(dataset, command):
            return f"deleted dataset {dataset.id}; its files are removed", audit.DELETE_DATASET, {}
        try:
            may_delete(dataset, await open_grant_count(self.store, dataset.id))
            await self.store.update(dataset.id, {"deleted": False, "state": dataset.state.value}, {"deleted": True, "last_command": str(command.event_id)})
        except (IllegalTransition, StaleDataset) as exc:
            raise Refused(str(exc)) from None
        return f"deleted dataset {dataset.id}; its files are removed", audit.DELETE_DATASET, {}


def _already(dataset: Dataset, command: DatasetCommand) -> bool:
    """This very command's change is already in the store (redelivered after the write, before its outcome)."""
    return dataset.last_command == str(command.event_id)
