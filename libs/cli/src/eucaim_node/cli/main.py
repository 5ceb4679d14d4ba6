"""The ``eucaim-node`` command."""

from __future__ import annotations

import typer

from . import deid, node, stack

app = typer.Typer(
    name="eucaim-node",
    help="A node of the European Cancer Imaging Initiative (EUCAIM): run it, check it, de-identify with it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack.app, name="stack")
app.command("status")(stack.status_command)
app.command("up")(node.up)
app.command("demo")(node.demo)
app.command("deid")(deid.deid)


def _mount_federation() -> None:
    from . import catalogue, search, withdraw

    app.command("search")(search.search)
    app.add_typer(catalogue.app, name="catalogue")
    app.command("withdraw")(withdraw.withdraw)


_mount_federation()


def _mount_audit() -> None:
    from . import audit

    app.add_typer(audit.app, name="audit")


_mount_audit()


def _mount_dlq() -> None:
    from . import dlq

    app.add_typer(dlq.app, name="dlq")


_mount_dlq()


def main() -> None:
    app()
