"""The ``eucaim-node`` command."""

from __future__ import annotations

import typer

from . import node, stack

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


def _mount_deid() -> None:
    # The de-identification CLI lives beside its engine's maintainers' other files.
    from . import deid

    app.command("deid")(deid.deid)


try:
    _mount_deid()
except ImportError as error:  # pragma: no cover - only while the module is being written
    if "deid" not in str(error):
        raise


def main() -> None:
    app()
