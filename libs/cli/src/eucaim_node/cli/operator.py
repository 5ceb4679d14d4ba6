"""What every `eucaim-node` command does at its edge: who the operator is, how it fails, how it is audited.

One home for the three things each command module used to write for itself: the actor named in audit
records, the one-line error with a non-zero exit, and the ``AccessRecorded`` event every operator
command publishes (ISO 27789 / EHDS: access to the node is itself recorded).
"""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
import uuid
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from eucaim_node.runtime import KafkaSettings

#: Exit status when the command did its work but its audit record could not be published.
EXIT_NOT_AUDITED = 4
#: How long a command waits for Kafka to take its audit record.
PUBLISH_TIMEOUT_SECONDS = 30.0


def operator_name(explicit: str | None = None) -> str:
    """The operator: `explicit` (``--operator``), else ``EUCAIM_OPERATOR``, else ``<user>@<host>``.

    A container user without a passwd entry is named by its uid rather than failing.
    """
    if explicit:
        return explicit
    if os.environ.get("EUCAIM_OPERATOR"):
        return os.environ["EUCAIM_OPERATOR"]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def actor(explicit: str | None = None) -> str:
    """The actor of this command's audit records: ``cli:<operator>``."""
    return f"cli:{operator_name(explicit)}"


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: <message>`` on standard error and return the exit to raise (2: bad input, 1: refused)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


async def record_access(settings: KafkaSettings, action: str, target: str | None, outcome: str,
                        detail: dict[str, Any], *, operator: str | None = None) -> None:
    """Publish the ``AccessRecorded`` event of this command; a failure is reported and exits 4, never hidden."""
    from eucaim_node.events import AccessRecorded
    from eucaim_node.runtime import publish_events

    event = AccessRecorded.create(cause=f"cli:{action}:{uuid.uuid4()}", producer="cli", actor=actor(operator),
                                  action=action, target=target, outcome=outcome, detail=detail)
    try:
        await asyncio.wait_for(publish_events(settings, event, client="cli"), PUBLISH_TIMEOUT_SECONDS)
    except Exception as exc:
        typer.echo(f"warning: this {action} could not be recorded in the audit log: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(EXIT_NOT_AUDITED) from None
