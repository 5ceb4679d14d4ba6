"""`eucaim-node withdraw --patient-id ID`: a patient's consent withdrawal (GDPR Art. 17, EHDS opt-out).

The hospital's patient ID is turned into the subject key with the node's HMAC key (the same keyed
pseudonym de-identification gives the patient) and then forgotten: it is never stored, printed,
logged or sent. The command publishes ``WithdrawalRequested`` (subject key only) and an
``AccessRecorded`` for the audit. Anonymisation then deletes the subject's studies from the
research Orthanc and never releases new ones; metadata removes them from the catalogue;
catalogue-sync recomputes and republishes the affected collections. Withdrawing twice is harmless
(same event ID). Without ``--patient-id`` the ID is asked for without echo (stays out of shell history).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from eucaim_node.runtime import KafkaSettings
from eucaim_node.settings import PseudonymKeySettings

from .operator import fail, record_access
from .search import EnvFile, load


class WithdrawalCliSettings(KafkaSettings, PseudonymKeySettings):
    pass


def withdraw(
    patient_id: Annotated[str | None, typer.Option("--patient-id", help="The hospital's patient ID (PatientID as "
                                                                        "sent to the clinical Orthanc). Prompted for if omitted.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    env_file: EnvFile = None,
) -> None:
    """Withdraw a patient: remove their studies from the research side and the catalogue, for good."""
    from eucaim_node.deid import KeyFileError, load_key, pseudonymise_patient_id
    from eucaim_node.events import WithdrawalRequested

    settings = load(WithdrawalCliSettings, env_file)
    if patient_id is None:
        patient_id = typer.prompt("Patient ID", hide_input=True)
    patient_id = patient_id.strip()
    if not patient_id:
        raise fail("the patient ID is empty")
    try:
        subject_key = pseudonymise_patient_id(patient_id, load_key(settings.hmac_key_file), settings.site_prefix)
    except (KeyFileError, OSError, ValueError) as exc:
        raise fail(f"cannot compute the subject key: {exc}") from None
    del patient_id
    if not yes:
        typer.confirm(f"Withdraw subject {subject_key}? Their de-identified studies are deleted from the research "
                      f"archive and the catalogue, and future studies are never released", abort=True)
    event = WithdrawalRequested.create(cause=f"withdrawal:{subject_key}", producer="cli", subject_key=subject_key)

    async def publish() -> None:
        from eucaim_node.runtime import publish_events

        await publish_events(settings, event)
        await record_access(settings, "withdrawal", subject_key, "success", {"event_id": str(event.event_id)})

    try:
        asyncio.run(publish())
    except Exception as exc:
        raise fail(f"the withdrawal was not published ({type(exc).__name__}): {exc}; nothing changed, try again", 1) from None
    typer.echo(f"Withdrawal of subject {subject_key} published (event {event.event_id}).")
    typer.echo("The research archive, the catalogue and the published collections are updated within seconds; "
               "every step is in the audit log (entity = study key, detail.subject_key = the subject key).")
