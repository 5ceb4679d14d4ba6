"""The ``eucaim-node`` command."""

from __future__ import annotations

import typer

from . import audit, catalogue, dataset, deid, dlq, job, kafka, node, readiness, search, stack, withdraw

app = typer.Typer(
    name="eucaim-node",
    help="A node of the European Cancer Imaging Initiative (EUCAIM): run it, check it, de-identify with it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Running the local node
app.command("up")(node.up)
app.command("demo")(node.demo)
app.command("status")(stack.status_command)
app.command("readiness")(readiness.readiness)
app.add_typer(stack.app, name="stack")
# Data managers and operators
app.command("deid")(deid.deid)
app.command("search")(search.search)
app.add_typer(catalogue.app, name="catalogue")
app.add_typer(dataset.app, name="dataset")
app.command("withdraw")(withdraw.withdraw)
app.add_typer(audit.app, name="audit")
app.add_typer(dlq.app, name="dlq")
app.add_typer(job.app, name="job")
app.add_typer(kafka.app, name="kafka")


def main() -> None:
    app()
