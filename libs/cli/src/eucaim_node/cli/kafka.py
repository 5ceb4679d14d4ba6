"""`eucaim-node kafka ...`: the node's Kafka principals and ACLs, from the one grant matrix (decision 0060)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Kafka principals, topics and ACLs of the node (for an operator's Kafka).", no_args_is_help=True)


@app.command("grants")
def grants_command() -> None:
    """Print who may read and write what: one line per principal's ACL (resource type, name, operation)."""
    from eucaim_node.events import KAFKA_GRANTS

    for grant in KAFKA_GRANTS.values():
        for kind, name, operation in grant.acls():
            typer.echo(f"User:{grant.principal}\t{kind}\t{name}\t{operation}")


@app.command("provision-script")
def provision_script_command() -> None:
    """Print a shell script that creates the node's topics, one SCRAM user per principal and exactly its ACLs,
    with Kafka's own tools (run it as a super user; see docs/operations.md)."""
    from eucaim_node.stack.kafka_security import provision_script

    typer.echo(provision_script(), nl=False)
