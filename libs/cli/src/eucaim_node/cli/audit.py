"""`eucaim-node audit ...`: verify the tamper-evident ledger, prove records, sign and export heads, export records.

Settings come from the environment (``EUCAIM_MONGO_URL``, ``EUCAIM_KAFKA_BOOTSTRAP_SERVERS``,
``EUCAIM_AUDIT_LOG_ORIGIN``, ``EUCAIM_AUDIT_SIGNING_KEY_FILE``, ``EUCAIM_AUDIT_LOG_PUBLIC_KEY_FILE``,
``EUCAIM_AUDIT_WITNESS_URL``, ``EUCAIM_AUDIT_WITNESS_VKEY_FILE``) or from ``--env-file`` (the local
stack's ``node.env``, used by default when the environment names no database). Every command is
itself audited: it publishes an ``AccessRecorded`` event (actor ``cli:<user>@<host>``).
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from eucaim_node.ledger.settings import LedgerSettings
from eucaim_node.runtime import KafkaSettings

from .operator import fail as _fail
from .operator import record_access

app = typer.Typer(help="The tamper-evident audit ledger: verify, prove, sign heads, export.", no_args_is_help=True)

EnvFile = Annotated[Path | None, typer.Option("--env-file", help="KEY=value settings file (default: the local stack's "
                                                                 "node.env when EUCAIM_MONGO_URL is not set).")]
PublicKey = Annotated[Path | None, typer.Option("--public-key", help="Trusted Ed25519 public key of the log (PEM); default: "
                                                                     "EUCAIM_AUDIT_LOG_PUBLIC_KEY_FILE, else derived from "
                                                                     "EUCAIM_AUDIT_SIGNING_KEY_FILE.")]


class Format(str, Enum):
    fhir = "fhir"
    dicom = "dicom"


class FhirVersion(str, Enum):
    R5 = "R5"
    R4B = "R4B"


class AuditCliSettings(KafkaSettings, LedgerSettings):
    """The ledger, and Kafka for each command's own audit record."""


def _settings(env_file: Path | None) -> AuditCliSettings:
    from .search import load

    return load(AuditCliSettings, env_file)


def _public_key(settings, public_key: Path | None):
    from eucaim_node.ledger import SigningKeyError, load_public_key

    path = public_key or settings.audit_log_public_key_file or settings.audit_signing_key_file
    if path is None:
        raise _fail("no trusted key: pass --public-key or set EUCAIM_AUDIT_LOG_PUBLIC_KEY_FILE")
    try:
        return load_public_key(path)
    except SigningKeyError as exc:
        raise _fail(str(exc)) from None


async def _record_access(settings, action: str, outcome: str, detail: dict[str, Any]) -> None:
    await record_access(settings, action, settings.audit_log_origin, outcome, detail)


def _run(coro):
    return asyncio.run(coro)


async def _with_db(settings, work):
    from eucaim_node.store import connect

    client, db = connect(settings, app_name="cli")
    try:
        return await work(db)
    finally:
        await client.close()


async def _with_reader(settings, work):
    """Run ``work`` with the ledger's reader port over the node's database."""
    from eucaim_node.ledger.store import MongoLedgerReader

    return await _with_db(settings, lambda db: work(MongoLedgerReader(db)))


# -- verify ---------------------------------------------------------------------------------------------------

def _witness_anchor(settings, key, no_witness: bool) -> list[dict[str, Any]]:
    if no_witness:
        return []
    from eucaim_node.ledger import HeadError, SigningKeyError
    from eucaim_node.ledger.witness_client import WitnessError
    from eucaim_node.ledger.witnessing import witnessed_head

    if not settings.audit_witness_url or settings.audit_witness_vkey_file is None:
        raise _fail("no witness configured (EUCAIM_AUDIT_WITNESS_URL, EUCAIM_AUDIT_WITNESS_VKEY_FILE); pass --no-witness "
                    "to check the ledger against its own heads only")
    try:
        return [_run(witnessed_head(settings.audit_witness_url, settings.audit_witness_vkey_file,
                                    settings.audit_witness_ca_file, settings.audit_log_origin, key))]
    except (SigningKeyError, OSError) as exc:
        raise _fail(f"witness verifier key: {exc}") from None
    except HeadError as exc:
        raise _fail(f"ledger NOT verified: the witness's checkpoint is invalid: {exc}", 1) from None
    except WitnessError as exc:
        raise _fail(f"ledger NOT verified: {exc}", 1) from None


@app.command()
def verify(
    env_file: EnvFile = None,
    public_key: PublicKey = None,
    head: Annotated[list[Path] | None, typer.Option("--head", help="A signed head kept outside the node; repeatable.")] = None,
    no_witness: Annotated[bool, typer.Option("--no-witness", help="Do not check against the witness's cosigned head "
                                                                   "(then a cut tail or a rewrite no local head covers "
                                                                   "goes unnoticed).")] = False,
) -> None:
    """Recompute every leaf and the tree, check every signed head and the witness's latest cosigned head; report the
    first inconsistency and exit 1."""
    from eucaim_node.ledger.verify import verify_ledger

    settings = _settings(env_file)
    key = _public_key(settings, public_key)
    extra = [{"note": p.read_text(), "source": f"kept ({p.name})"} for p in head or ()]
    witnessed = _witness_anchor(settings, key, no_witness)
    report = _run(_with_reader(settings, lambda reader: verify_ledger(reader, key, settings.audit_log_origin,
                                                                      [*extra, *witnessed])))
    detail = {"records": report.records, "heads_verified": report.heads_verified, "findings": len(report.findings),
              "witness": "off" if no_witness else "on"}
    if report.ok:
        typer.echo(f"ledger OK: {report.records} records, {report.heads_verified} signed heads verified, "
                   f"root {report.root}")
        if witnessed:
            size = witnessed[0]["note"].split("\n")[1]
            typer.echo(f"witness: consistent with the head of size {size} {witnessed[0]['source'].removeprefix('witnessed ')}")
        else:
            typer.echo("WITHOUT a witness (--no-witness): records deleted at the end together with their heads, and "
                       "rewrites of records no local head covers, are NOT detected")
        if report.unsigned_tail:
            typer.echo(f"note: the last {report.unsigned_tail} records are not yet covered by a signed head")
    else:
        typer.echo(f"ledger INCONSISTENT: {len(report.findings)} finding(s); first:", err=True)
        typer.echo(f"  {report.first()}", err=True)
        for finding in report.ordered()[1:20]:
            typer.echo(f"  also: {finding}", err=True)
    _run(_record_access(settings, "audit-verify", "success" if report.ok else "failure", detail))
    if not report.ok:
        raise typer.Exit(1)


# -- heads ----------------------------------------------------------------------------------------------------

@app.command("head")
def head_command(
    env_file: EnvFile = None,
    sign: Annotated[bool, typer.Option("--sign", help="Sign a new tree head now (needs the signing key).")] = False,
    all_heads: Annotated[bool, typer.Option("--all", help="Print every signed head (for a witness).")] = False,
) -> None:
    """Print the latest signed tree head (a C2SP checkpoint); --sign makes one now; --all prints every head."""
    from eucaim_node.ledger.store import LedgerInconsistent, LedgerStore
    from eucaim_node.ledger import SigningKeyError, load_private_key

    settings = _settings(env_file)

    async def work(db):
        store = LedgerStore(db)
        if sign:
            if settings.audit_signing_key_file is None:
                raise _fail("--sign needs EUCAIM_AUDIT_SIGNING_KEY_FILE")
            try:
                key = load_private_key(settings.audit_signing_key_file)
            except SigningKeyError as exc:
                raise _fail(str(exc)) from None
            try:
                await store.sign_head(key, settings.audit_log_origin, datetime.now(UTC), force=True)
            except LedgerInconsistent as exc:
                raise _fail(f"not signed: {exc}", 1) from None
            await _submit_to_witness(settings, store)
        return await store.signed_heads()

    heads = _run(_with_db(settings, work))
    if not heads:
        raise _fail("no signed tree head yet", 1)
    for h in heads if all_heads else heads[-1:]:
        typer.echo(h["note"], nl=False)
        if all_heads:
            typer.echo("")
    _run(_record_access(settings, "audit-head-sign" if sign else "audit-head", "success", {"tree_size": heads[-1]["_id"]}))


async def _submit_to_witness(settings, store) -> None:
    """Have the new head cosigned now (if a witness is configured); a failure leaves it pending for the audit
    service, which submits the newest head every round."""
    from eucaim_node.ledger.witness_client import Witness, WitnessClient, WitnessError
    from eucaim_node.ledger.witnessing import WitnessSubmitter
    from eucaim_node.settings import read_secret

    if not settings.audit_witness_url or settings.audit_witness_token_file is None:
        return
    witness = Witness.from_file(settings.audit_witness_vkey_file) if settings.audit_witness_vkey_file else None
    client = WitnessClient(settings.audit_witness_url, token=read_secret(settings.audit_witness_token_file),
                           ca_file=settings.audit_witness_ca_file)
    try:
        submitted = await WitnessSubmitter(store, client, witness, public_key=_public_key(settings, None),
                                           origin=settings.audit_log_origin).submit_latest()
        if submitted is not None:
            typer.echo(f"cosigned by the witness at size {submitted.witnessed_size}", err=True)
    except WitnessError as exc:
        typer.echo(f"warning: not cosigned by the witness (pending; the audit service retries): {exc}", err=True)
    finally:
        await client.close()


@app.command("witness-reanchor")
def witness_reanchor_command(
    to_size: Annotated[int, typer.Option("--to-size", help="The size the witness now reports (witness_reported_size "
                                                           "in the ledger state; see the error it logged).")],
    env_file: EnvFile = None,
) -> None:
    """Allow the next submission to follow a witness that went back below the size it cosigned (lost or rolled-back
    state) to TO_SIZE, once. Run `verify` first: heads after TO_SIZE are cosigned again without the old anchor."""
    from eucaim_node.ledger.store import LedgerStore
    from eucaim_node.ledger.witnessing import reanchor_refusal

    settings = _settings(env_file)

    async def work(db):
        store = LedgerStore(db)
        state = await store.witness_state()
        refusal = reanchor_refusal(state, to_size)
        if refusal is None:
            await store.allow_witness_reanchor(to_size, datetime.now(UTC))
        return refusal, int(state.get("cosigned_size") or 0)

    refusal, cosigned_size = _run(_with_db(settings, work))
    if refusal is not None:
        _run(_record_access(settings, "audit-witness-reanchor", "denied", {"to_size": to_size}))
        raise _fail(refusal, 1)
    _run(_record_access(settings, "audit-witness-reanchor", "success",
                        {"to_size": to_size, "cosigned_size": cosigned_size}))
    typer.echo(f"the next submission may re-anchor the witness at size {to_size} (it had cosigned {cosigned_size})")


@app.command("public-key")
def public_key_command(env_file: EnvFile = None) -> None:
    """Print the public key of the signing key (PEM) and its signed-note verifier key."""
    from eucaim_node.ledger import public_pem, verifier_key

    settings = _settings(env_file)
    key = _public_key(settings, None)
    typer.echo(public_pem(key), nl=False)
    typer.echo(verifier_key(settings.audit_log_origin, key))


# -- proofs ---------------------------------------------------------------------------------------------------

@app.command()
def prove(
    record_id: str,
    env_file: EnvFile = None,
    size: Annotated[int | None, typer.Option("--size", help="Prove against the head of this size (default: latest).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the proof here instead of stdout.")] = None,
    public_key: PublicKey = None,
) -> None:
    """Print an inclusion proof of RECORD_ID in a signed head (JSON), checked before it is printed."""
    from eucaim_node.ledger.proofs import inclusion_proof

    settings = _settings(env_file)
    key = _public_key(settings, public_key)
    proof = _proof(settings, lambda reader: inclusion_proof(reader, record_id, settings.audit_log_origin, key, size))
    leaf, tree_size = proof.document["leaf_index"], proof.document["tree_size"]
    _emit_proof(settings, proof, output, key, "audit-prove", {"leaf_index": leaf, "tree_size": tree_size},
                f"inclusion of leaf {leaf} in the signed head of size {tree_size}")


@app.command()
def consistency(
    first: int,
    second: int,
    env_file: EnvFile = None,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    public_key: PublicKey = None,
) -> None:
    """Print a consistency proof between the signed heads of sizes FIRST and SECOND (JSON), checked first."""
    from eucaim_node.ledger.proofs import consistency_proof

    settings = _settings(env_file)
    key = _public_key(settings, public_key)
    proof = _proof(settings, lambda reader: consistency_proof(reader, first, second, settings.audit_log_origin, key))
    _emit_proof(settings, proof, output, key, "audit-consistency", {"first": first, "second": second},
                f"consistency of the signed heads of sizes {first} and {second}")


def _proof(settings, build):
    from eucaim_node.ledger.proofs import ProofUnavailable

    try:
        return _run(_with_reader(settings, build))
    except ProofUnavailable as exc:
        raise _fail(str(exc), 1) from None


def _emit_proof(settings, built, output: Path | None, key, action: str, detail: dict[str, Any], claim: str) -> None:
    """Check a proof before anyone relies on it, print or write it, audit the request, fail if it does not verify.
    Stored subtree hashes that disagreed with the leaves are reported, not repaired: the CLI's database user may
    only read them (store.access); the audit service replaces wrong ones it meets (decision 0115)."""
    from eucaim_node.ledger.proofs import check_proof

    proof = built.document
    if built.stale:
        detail = {**detail, "stale_subtree_hashes": len(built.stale)}
        typer.echo(f"warning: {len(built.stale)} stored subtree hash(es) disagree with the leaves "
                   f"({', '.join(f'{level}/{index}' for level, index in sorted(built.stale))}); this proof was "
                   "built from the leaves instead", err=True)
    problem = check_proof(proof, key, settings.audit_log_origin)
    text = json.dumps(proof, indent=2) + "\n"
    if output:
        output.write_text(text)
    else:
        typer.echo(text, nl=False)
    _run(_record_access(settings, action, "failure" if problem else "success", detail))
    if problem:
        raise _fail(f"the proof does not verify: {problem}", 1)
    typer.echo(f"{claim}: verified", err=True)


@app.command("check-proof")
def check_proof_command(
    proof_file: Path,
    public_key: Annotated[Path, typer.Option("--public-key", help="Trusted Ed25519 public key (PEM).")],
    origin: Annotated[str, typer.Option("--origin", help="The log's name in its checkpoints.")] = "eucaim-node/audit",
) -> None:
    """Check a proof file offline (no database, no Kafka): exit 0 if it verifies, 1 if not."""
    from eucaim_node.ledger import SigningKeyError, load_public_key
    from eucaim_node.ledger.proofs import check_proof

    try:
        key = load_public_key(public_key)
        proof = json.loads(proof_file.read_text())
    except (SigningKeyError, OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    problem = check_proof(proof, key, origin)
    if problem:
        raise _fail(f"proof does NOT verify: {problem}", 1)
    typer.echo(f"{proof.get('type')} proof verified")


# -- export ---------------------------------------------------------------------------------------------------

def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO 8601 date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def export(
    since: Annotated[str, typer.Option("--since", help="ISO 8601 date/time (UTC if no zone): records recorded from then.")],
    format: Annotated[Format, typer.Option("--format", help="fhir: AuditEvent NDJSON; dicom: PS3.15 A.5 XML, one message per line.")] = Format.fhir,
    fhir_version: Annotated[FhirVersion, typer.Option("--fhir-version")] = FhirVersion.R5,
    until: Annotated[str | None, typer.Option("--until", help="ISO 8601: records recorded before then.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    env_file: EnvFile = None,
) -> None:
    """Export records as FHIR AuditEvent (R5 or R4B, each validated) or DICOM audit messages."""
    from eucaim_node.ledger.export import export_lines

    settings = _settings(env_file)
    start, end = _parse_time(since), _parse_time(until) if until else None
    version = fhir_version.value if format is Format.fhir else None

    async def work(reader):
        return [line async for line in export_lines(reader, start, end, origin=settings.audit_log_origin,
                                                     fhir_version=version)]

    lines = _run(_with_reader(settings, work))
    handle = output.open("w") if output else sys.stdout
    try:
        for line in lines:
            handle.write(line + "\n")
    finally:
        if output:
            handle.close()
    _run(_record_access(settings, "audit-export", "success",
                        {"format": format.value if format is Format.dicom else f"fhir-{fhir_version.value}",
                         "since": since, "records": len(lines)}))
    typer.echo(f"exported {len(lines)} records", err=True)
