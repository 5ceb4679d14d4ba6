"""`eucaim-node readiness [--format text|json|html] [--output FILE]`: is this node ready to join EUCAIM?

The checks live in ``eucaim_node.readiness`` (core, over the :class:`NodeProbe` port); this module is the adapter
that asks the local node (its federation API over HTTP, its store as the operator's read-only user, its settings,
the audit verifier of ``eucaim-node audit verify``) and the command that prints the report. Exit status 1 when
any check fails, 0 otherwise (warnings included).
"""

from __future__ import annotations

import asyncio
import json
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer

from eucaim_node.catalogue.search import REQUEST_EXAMPLES_FILE
from eucaim_node.readiness.ports import (
    DatasetsVerification, DeidSettings, DeliveryState, HttpAnswer, LedgerVerification, ProbeError, Transport,
)
from eucaim_node.stack import Stack, StackSettings
from eucaim_node.stack.configs import parse_env_file
from eucaim_node.store import collections

HTTP_TIMEOUT = 15.0
STORE_TIMEOUT_MS = 4000


class LocalNodeProbe:
    """The local stack's node, as ``make up`` runs it (profile from ``EUCAIM_STACK_*``)."""

    def __init__(self, stack: Stack, *, source_address: str | None = None) -> None:
        self.stack = stack
        # The federation API limits failed logins per client address; a test may speak from its own address.
        transport = httpx.HTTPTransport(local_address=source_address) if source_address else None
        self._http = httpx.Client(timeout=HTTP_TIMEOUT, transport=transport)
        self._env = parse_env_file(stack.node_env_file().read_text()) if stack.node_env_file().exists() else {}
        self._base = stack.search_url().removesuffix("/federation/search")
        self._db = None
        self._store_error: str | None = None

    # -- helpers
    def _settings(self, cls: type) -> Any:
        """The operator's settings (node.env), with the process environment first, as every CLI command reads them."""
        env_file = self.stack.node_env_file()
        return cls(_env_file=env_file) if env_file.exists() else cls()

    def _database(self):
        if self._store_error:
            raise ProbeError(f"store unreachable: {self._store_error}")
        if self._db is None:
            from pymongo import MongoClient

            from eucaim_node.store import MongoSettings

            settings = self._settings(MongoSettings)
            client = MongoClient(settings.mongo_url.get_secret_value(), tz_aware=True, appname="cli-readiness",
                                 serverSelectionTimeoutMS=STORE_TIMEOUT_MS, connectTimeoutMS=STORE_TIMEOUT_MS,
                                 **settings.mongo_client_options())
            self._db = client[settings.mongo_database]
        return self._db

    def _get(self, path: str, **params: str) -> HttpAnswer:
        try:
            response = self._http.get(self._base + path, params=params)
        except httpx.HTTPError as exc:
            raise ProbeError(f"catalogue-sync not answering at {self._base}: {type(exc).__name__}") from None
        return HttpAnswer(response.status_code, response.text, response.headers.get("content-type", ""))

    # -- NodeProbe
    def node_name(self) -> str:
        return f"{self.stack.settings.name} ({self._base})"

    def store_ping(self) -> str:
        try:
            db = self._database()
            db.command("ping")
            version = db.client.server_info().get("version", "?")
        except Exception as exc:
            # pymongo appends its timeouts and topology: the first part names the host and the cause.
            self._store_error = f"{type(exc).__name__}: {str(exc).split(' (configured timeouts')[0][:200]}"
            raise ProbeError(self._store_error) from None
        return f"{self.stack.mongo_url()} answers (server {version}), as the operator's read-only user over TLS"

    def catalogue(self, fmt: str = "ttl") -> HttpAnswer:
        return self._get("/catalogue", format=fmt)

    def dataset(self, collection_id: str) -> HttpAnswer:
        return self._get(f"/catalogue/datasets/{collection_id}")

    def collections_config(self) -> Any:
        from eucaim_node.catalogue.settings import CollectionsSettings

        return CollectionsSettings().collections_config()

    def push_configured(self) -> str | None:
        from eucaim_node.catalogue.settings import PublicationSettings

        url = PublicationSettings().catalogue_push_url
        return urlsplit(url).netloc if url else None

    def deliveries(self) -> list[DeliveryState]:
        versions = self._database()[collections.CATALOGUE_DATASET_VERSIONS]
        states = []
        for collection_id in versions.distinct("collection_id"):
            doc = versions.find_one({"collection_id": collection_id}, {"turtle": 0}, sort=[("version", -1)])
            delivery = doc.get("delivery", {})
            states.append(DeliveryState(collection_id, doc["version"], delivery.get("status", "?"),
                                        int(delivery.get("attempts", 0)), delivery.get("last_error")))
        return states

    def search_token(self) -> str | None:
        from eucaim_node.catalogue.settings import read_tokens

        path = self.stack.search_token_file()
        try:
            tokens = read_tokens(path)
        except ValueError:
            return None
        return next(iter(tokens), None)

    def search(self, body: Any, token: str | None) -> HttpAnswer:
        headers = {"content-type": "application/json"}
        if token is not None:
            headers["authorization"] = f"Secret {token}"
        try:
            response = self._http.post(self.stack.search_url(), content=json.dumps(body).encode(), headers=headers)
        except httpx.HTTPError as exc:
            raise ProbeError(f"search endpoint not answering at {self.stack.search_url()}: {type(exc).__name__}") from None
        try:
            parsed = response.json()
        except ValueError:
            parsed = response.text[:300]
        return HttpAnswer(response.status_code, parsed, response.headers.get("content-type", ""),
                          response.headers.get("retry-after"))

    def request_examples(self) -> list[dict[str, Any]]:
        # The file's notes mark the examples whose keys are not EUCAIM's ("Generic (BBMRI key ...)").
        return [{"name": e["name"], "body": json.loads(e["raw"]), "eucaim": not e.get("note", "").startswith("Generic (")}
                for e in json.loads(REQUEST_EXAMPLES_FILE.read_text())["examples"]]

    def search_protection(self) -> tuple[str, int]:
        from eucaim_node.catalogue.settings import SearchSettings

        settings = SearchSettings()
        return settings.search_protection, settings.search_min_count

    def collection_quality(self) -> dict[str, dict[str, Any]]:
        docs = self._database()[collections.CATALOGUE_COLLECTIONS].find({}, {"aggregates.quality": 1})
        return {d["_id"]: (d.get("aggregates") or {}).get("quality") or {} for d in docs}

    def datasets_verify(self) -> DatasetsVerification | None:
        """Every materialised Tier 3 dataset verified as `eucaim-node dataset verify` does."""
        from eucaim_node.datasets import MongoDatasetStore
        from eucaim_node.datasets.layout import DatasetRoot
        from eucaim_node.datasets.settings import DatasetRootSettings

        from .dataset import verify_materialised

        from eucaim_node.store import MongoSettings, connect

        root = DatasetRoot(self._settings(DatasetRootSettings).dataset_root)
        self._database()  # fails fast when the store is known to be down

        async def datasets():
            client, db = connect(self._settings(MongoSettings), app_name="cli-readiness")
            try:
                return await MongoDatasetStore(db).list()
            finally:
                await client.close()

        checked, failures, skipped = 0, [], 0
        for dataset in asyncio.run(datasets()):
            if dataset.deleted:
                continue
            refusal, verdict = verify_materialised(root, dataset)
            if refusal is not None:
                skipped += 1
                continue
            checked += 1
            if not verdict.ok:
                failures.append(f"{dataset.id} v{dataset.version}: {verdict.first_difference}: {verdict.detail}"[:200])
        summary = (f"{checked - len(failures)} of {checked} materialised dataset(s) verify (files against their "
                   f"SHA3-256 digests)" + (f"; {skipped} not materialised" if skipped else ""))
        return DatasetsVerification(not failures, summary, tuple(failures), datasets=checked)

    def deid_settings(self) -> DeidSettings:
        from eucaim_node.deid import profile_named

        env = {**self.stack.service_env("anonymisation"), **os.environ}
        name = env.get("EUCAIM_DEID_PROFILE", "eucaim")
        options = tuple(o.strip() for o in env.get("EUCAIM_DEID_OPTIONS", "").split(",") if o.strip())
        try:
            profile = profile_named(name, options)
        except Exception as exc:
            return DeidSettings(name, options, False, str(exc)[:300])
        return DeidSettings(name, tuple(sorted(o.value if hasattr(o, "value") else str(o) for o in profile.options)),
                            profile.phi_guard)

    def quarantine(self) -> tuple[int, int]:
        # The audit log records every StudyQuarantined (with its count); the node has no review state yet, so
        # every quarantined instance counts as not reviewed.
        records = self._database()[collections.AUDIT_RECORDS].find({"action": "StudyQuarantined"}, {"detail": 1})
        total = sum(int((r.get("detail") or {}).get("quarantined_count", 0)) for r in records)
        return total, total

    def transport(self) -> Transport:
        protocol = self._env.get("EUCAIM_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
        from eucaim_node.store import MongoSettings

        mongo_tls = bool(self._settings(MongoSettings).mongo_client_options().get("tls"))
        anonymous = []
        for instance in ("clinical", "research"):
            try:
                status = httpx.get(f"{self.stack.orthanc_url(instance)}/system", timeout=HTTP_TIMEOUT).status_code
            except httpx.HTTPError as exc:
                raise ProbeError(f"{instance} Orthanc not answering: {type(exc).__name__}") from None
            if status != 401:
                anonymous.append(instance)
        return Transport(protocol, mongo_tls, not anonymous, self.stack.search_url())

    def ledger(self) -> LedgerVerification:
        from eucaim_node.ledger.settings import LedgerSettings

        from eucaim_node.ledger.verify import verify_ledger
        from eucaim_node.ledger.witnessing import witnessed_head

        from .audit import _public_key, _with_reader

        self._database()  # fails fast when the store is known to be down
        settings = self._settings(LedgerSettings)
        try:
            key = _public_key(settings, None)
        except typer.Exit:
            raise ProbeError("no trusted public key of the audit log (EUCAIM_AUDIT_LOG_PUBLIC_KEY_FILE)") from None

        async def work():
            from eucaim_node.ledger.witness_client import WitnessError

            if not settings.audit_witness_url or settings.audit_witness_vkey_file is None:
                witnessed, unwitnessed = [], "no witness configured"
            else:
                try:
                    witnessed = [await witnessed_head(settings.audit_witness_url, settings.audit_witness_vkey_file,
                                                      settings.audit_witness_ca_file, settings.audit_log_origin, key)]
                except WitnessError as exc:
                    if "holds no checkpoint" not in str(exc):
                        raise
                    witnessed, unwitnessed = [], str(exc)  # verified against the node's own signed heads only
                else:
                    unwitnessed = None
            report = await _with_reader(settings, lambda reader: verify_ledger(reader, key, settings.audit_log_origin,
                                                                               witnessed))
            return witnessed, unwitnessed, report

        try:
            witnessed, unwitnessed, report = asyncio.run(work())
        except Exception as exc:
            return LedgerVerification(False, 0, 0, None, f"{type(exc).__name__}: {str(exc)[:300]}")
        size = int(witnessed[0]["note"].split("\n")[1]) if witnessed else None
        return LedgerVerification(report.ok, report.records, report.heads_verified, size,
                                  str(report.first())[:300] if not report.ok else unwitnessed)


class Format(str, Enum):
    text = "text"
    json = "json"
    html = "html"


def report_for(stack: Stack, *, source_address: str | None = None):
    from eucaim_node.readiness.core import assess

    return assess(LocalNodeProbe(stack, source_address=source_address))


def readiness(
    fmt: Annotated[Format, typer.Option("--format", help="text (terminal), json, or html (one self-contained file).")] = Format.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file.")] = None,
    source_address: Annotated[str | None, typer.Option("--source-address", hidden=True,
                                                       help="Local address to speak to the node from (tests).")] = None,
) -> None:
    """Check the running node against EUCAIM's onboarding (Tiers 1–3, de-identification, security, data quality):
    pass / warn / fail per check, with the evidence and what to do. Exit status 1 if any check fails."""
    from eucaim_node.readiness.render import RENDERERS

    report = report_for(Stack(StackSettings()), source_address=source_address)
    rendered = RENDERERS[fmt.value](report)
    if output is not None:
        output.write_text(rendered, encoding="utf-8")
        typer.echo(f"readiness report written to {output}: {'READY' if report.ready else 'NOT READY'}", err=True)
    else:
        typer.echo(rendered, nl=False)
    raise typer.Exit(report.exit_code)
