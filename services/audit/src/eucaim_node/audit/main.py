"""Audit: consumes every domain topic and every dead-letter topic; one record (one Merkle leaf) per event."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from faststream import Context
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaMessage, KafkaRouter

from eucaim_node.events import AUDITED_DEAD_LETTER_TOPICS, DOMAIN_TOPICS, consumer_group, dead_letter_topic, grant
from eucaim_node.ledger import load_private_key
from eucaim_node.ledger.syslog import SyslogTlsSender, client_context
from eucaim_node.runtime import CONSUMER_ACK_POLICY, build_app, create_broker, ensure_topics
from eucaim_node.store import connect, ping

from eucaim_node.ledger.store import LedgerStore, TreeNodeIndex
from eucaim_node.ledger.witness_client import Witness, WitnessClient
from eucaim_node.ledger.witnessing import WitnessSubmitter
from eucaim_node.settings import read_secret

from .config import AuditSettings
from .core.records import KafkaPosition, audit_record
from .adapters.background import Background, HeadSigner, SyslogForwarder

NAME = "audit"
GROUP = consumer_group(NAME)

log = logging.getLogger("eucaim_node.audit")
router = KafkaRouter()


@router.subscriber(*DOMAIN_TOPICS, *AUDITED_DEAD_LETTER_TOPICS, group_id=GROUP, ack_policy=CONSUMER_ACK_POLICY,
                   auto_offset_reset="earliest", description="Append one audit record (one Merkle leaf) per event.")
async def on_any_event(message: KafkaMessage, ledger: Annotated[LedgerStore, Context("audit_ledger")]) -> None:
    raw = message.raw_message
    headers = {k: v.decode(errors="replace") for k, v in (raw.headers or ())}
    record = audit_record(raw.value or b"", headers, KafkaPosition(raw.topic, raw.partition, raw.offset), datetime.now(UTC))
    appended = await ledger.append(record)
    if appended.new:
        log.info("audit record appended", extra={"action": record["action"], "record_id": record["_id"],
                                                  "entity": record["entity"], "leaf_index": appended.leaf_index})


def witness_submitter(settings: AuditSettings, ledger: LedgerStore, key: Ed25519PrivateKey | None,
                      nodes: TreeNodeIndex | None) -> tuple[WitnessSubmitter | None, WitnessClient | None]:
    """The witness submission, when EUCAIM_AUDIT_WITNESS_URL is set (then its token and verifier key files are
    required) and heads are signed (``key``: each checkpoint is checked against its public key before it is sent)."""
    if not settings.audit_witness_url:
        log.warning("EUCAIM_AUDIT_WITNESS_URL is not set: no witness cosigns the tree heads, so deleting the newest "
                    "records with their heads would go unnoticed (docs/audit.md)")
        return None, None
    if settings.audit_witness_token_file is None or settings.audit_witness_vkey_file is None:
        raise ValueError("EUCAIM_AUDIT_WITNESS_URL needs EUCAIM_AUDIT_WITNESS_TOKEN_FILE and EUCAIM_AUDIT_WITNESS_VKEY_FILE")
    if key is None:
        return None, None
    witness = Witness.from_file(settings.audit_witness_vkey_file)
    client = WitnessClient(settings.audit_witness_url, token=read_secret(settings.audit_witness_token_file),
                           ca_file=settings.audit_witness_ca_file)
    return WitnessSubmitter(ledger, client, witness, public_key=key.public_key(), origin=settings.audit_log_origin,
                            nodes=nodes), client


def create_app(settings: AuditSettings) -> AsgiFastStream:
    broker = create_broker(settings, service=NAME, dead_letter_topic=dead_letter_topic(GROUP))
    broker.include_router(router)
    mongo, db = connect(settings, app_name=NAME)
    ledger = LedgerStore(db)
    background = Background()
    key = None if settings.audit_signing_key_file is None else load_private_key(
        settings.audit_signing_key_file, generate=settings.audit_signing_key_generate)
    nodes = None if key is None else TreeNodeIndex(db, key.public_key(), settings.audit_log_origin)
    submitter, witness_client = witness_submitter(settings, ledger, key, nodes)
    if key is not None:
        background.factories.append(HeadSigner(ledger, key, settings.audit_log_origin,
                                               settings.audit_head_interval_seconds, submitter, nodes=nodes).run)
    else:
        log.warning("EUCAIM_AUDIT_SIGNING_KEY_FILE is not set: records are appended to the tree but no tree head is signed")
    if settings.audit_syslog_host:
        context = client_context(settings.audit_syslog_ca_file, settings.audit_syslog_cert_file,
                                 settings.audit_syslog_key_file)
        sender = SyslogTlsSender(settings.audit_syslog_host, settings.audit_syslog_port, context,
                                 server_name=settings.audit_syslog_server_name)
        background.factories.append(SyslogForwarder(ledger, sender, settings.audit_log_origin).run)

    async def start() -> None:
        await ensure_topics(settings, grant(NAME).topics)
        await ledger.ensure_indexes()

    async def started() -> None:
        background.start()

    async def stop() -> None:
        await background.stop()
        if witness_client is not None:
            await witness_client.close()
        await mongo.close()

    app = build_app(broker, checks=[("mongodb", lambda: ping(db))], on_startup=[start], after_startup=[started],
                    on_shutdown=[stop])
    app.context.set_global("audit_ledger", ledger)
    return app
