"""`eucaim-node catalogue dcat|check`: the node's HealthDCAT-AP catalogue as published, and its SHACL check."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Annotated, Any

import typer

from .operator import fail, record_access
from .search import EnvFile, FederationCliSettings, load

app = typer.Typer(help="The node's published catalogue (EUCAIM Tier 1, HealthDCAT-AP).", no_args_is_help=True)


class Format(str, Enum):
    ttl = "ttl"
    jsonld = "jsonld"


async def _catalogue_graph(settings: FederationCliSettings) -> tuple[Any, int]:
    from pymongo import DESCENDING

    from eucaim_node.catalogue import dcat
    from eucaim_node.store.collections import CATALOGUE_DATASET_VERSIONS
    from eucaim_node.store import connect

    config = settings.collections_config()
    client, db = connect(settings, app_name="cli")
    graph, datasets, modified = dcat.new_graph(), [], None
    try:
        for collection in config.collections:
            latest = await db[CATALOGUE_DATASET_VERSIONS].find_one({"collection_id": collection.id},
                                                                   sort=[("version", DESCENDING)])
            if latest is None:
                continue
            graph.parse(data=latest["turtle"], format="turtle")
            datasets.append(dcat.URIRef(dcat.dataset_iri(config, collection.id)))
            modified = max(modified or latest["created_at"], latest["created_at"])
    finally:
        await client.close()
    dcat.add_catalog(graph, config, datasets, modified)
    return graph, len(datasets)


@app.command("dcat")
def dcat_command(
    format: Annotated[Format, typer.Option("--format", help="Turtle or JSON-LD.")] = Format.ttl,
    env_file: EnvFile = None,
) -> None:
    """Print the current catalogue: a DCAT Catalog with the newest version of every collection's dataset."""
    from eucaim_node.catalogue import dcat

    settings = load(FederationCliSettings, env_file)
    try:
        graph, count = asyncio.run(_catalogue_graph(settings))
        asyncio.run(record_access(settings, "catalogue-read", "catalogue", "success",
                                  {"format": format.value, "datasets": count}))
    except Exception as exc:
        raise fail(f"cannot read the catalogue ({type(exc).__name__}): {exc}", 1) from None
    typer.echo(dcat.serialise(graph, format.value))


@app.command("check")
def check_command(env_file: EnvFile = None) -> None:
    """Validate the current catalogue against the HealthDCAT-AP R8 NON_PUBLIC SHACL shapes (offline)."""
    from eucaim_node.catalogue.shacl import validate

    settings = load(FederationCliSettings, env_file)
    try:
        graph, count = asyncio.run(_catalogue_graph(settings))
    except Exception as exc:
        raise fail(f"cannot read the catalogue ({type(exc).__name__}): {exc}", 1) from None
    report = validate(graph)
    typer.echo(f"{count} datasets, {len(graph)} triples: {report.summary()}")
    for issue in report.violations:
        typer.echo(f"  violation: {issue.focus} {issue.path or ''}: {issue.message}")
    if not report.conforms:
        raise typer.Exit(1)
