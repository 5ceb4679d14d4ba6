"""`eucaim-node search QUERY_JSON_FILE`: a federated search query against the local catalogue.

The query is the JSON body EUCAIM's Focus sends (``{"ast": ..., "id": ...}``, or the bare tree);
the answer is exactly what the node's search endpoint would return to the federation, with the
same small-cell protection. The query is audited (``AccessRecorded``, actor ``cli:<user>@<host>``)
before the answer is printed.

Settings come from the environment (``EUCAIM_MONGO_URL``, ``EUCAIM_KAFKA_BOOTSTRAP_SERVERS``,
``EUCAIM_COLLECTIONS_FILE``, ``EUCAIM_SEARCH_*``) or ``--env-file`` (default: the local stack's
``node.env`` when ``EUCAIM_MONGO_URL`` is not set).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from eucaim_node.catalogue.settings import CollectionsSettings, SearchSettings
from eucaim_node.runtime import KafkaSettings
from eucaim_node.store import MongoSettings

from .operator import fail, record_access

EnvFile = Annotated[Path | None, typer.Option("--env-file", help="KEY=value settings file (default: the local stack's "
                                                                 "node.env when EUCAIM_MONGO_URL is not set).")]


class FederationCliSettings(KafkaSettings, MongoSettings, CollectionsSettings, SearchSettings):
    pass


def default_env_file(env_file: Path | None) -> Path | None:
    if env_file is None and "EUCAIM_MONGO_URL" not in os.environ:
        from eucaim_node.stack import Stack, StackSettings

        default = Stack(StackSettings()).node_env_file()
        return default if default.exists() else None
    return env_file


def load(cls: type, env_file: Path | None, **values: Any) -> Any:
    """Settings from the environment, then ``env_file`` (default: the local stack's node.env), then ``values``.

    A wrong setting ends the command with one line naming each wrong variable (exit status 2).
    """
    from pydantic import ValidationError

    from eucaim_node.runtime.settings import describe_errors

    env_file = default_env_file(env_file)
    try:
        return cls(_env_file=env_file, **values) if env_file else cls(**values)
    except ValidationError as exc:
        raise fail("configuration: " + "; ".join(line.strip() for line in describe_errors(exc))) from None
    except Exception as exc:
        raise fail(f"configuration: {exc}") from None


async def _search(settings: FederationCliSettings, body: Any) -> dict[str, Any]:
    from eucaim_node.catalogue.search import QueryCompiler, QueryError
    from eucaim_node.catalogue.answering import search_audit_detail
    from eucaim_node.catalogue.store import noise_secret, run_search
    from eucaim_node.store import connect

    body = body if isinstance(body, dict) and "ast" in body else {"ast": body}
    try:
        query = QueryCompiler().compile_request(body)
    except QueryError as exc:
        await record_access(settings, "federated-search", None, "failure", {"error": str(exc)[:300]})
        raise fail(f"query not accepted: {exc}") from None
    client, db = connect(settings, app_name="cli")
    try:
        answer = await run_search(db, query, settings.collections_config(), settings.protection(await noise_secret(db, create=False)))
    finally:
        await client.close()
    await record_access(settings, "federated-search", None, "success", search_audit_detail(query, answer))
    return answer.body


def search(
    query_file: Annotated[Path, typer.Argument(help="JSON file with the query ({\"ast\": ...}); '-' reads standard input.",
                                               allow_dash=True)],
    env_file: EnvFile = None,
) -> None:
    """Run a federated search query (EUCAIM AST) against the local catalogue and print the answer."""
    try:
        text = sys.stdin.read() if str(query_file) == "-" else query_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot read {query_file}: {exc.strerror}") from None
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise fail(f"{query_file} is not valid JSON: {exc}") from None
    settings = load(FederationCliSettings, env_file)
    try:
        answer = asyncio.run(_search(settings, body))
    except typer.Exit:
        raise
    except Exception as exc:
        raise fail(f"search failed ({type(exc).__name__}): {exc}", 1) from None
    typer.echo(json.dumps(answer, indent=2))
