"""Assembles the witness from its settings: key, configured logs, state, HTTP app."""

from __future__ import annotations

from eucaim_node.ledger import load_private_key
from eucaim_node.ledger.cosignature import cosigner_verifier_key
from eucaim_node.settings import read_secret

from .adapters.store import WitnessStore
from .config import WitnessSettings
from .adapters.inbound.http import WitnessApp
from .core.checkpoints import parse_logs

NAME = "witness"
STATE_FILE = "witness.sqlite"


def create_app(settings: WitnessSettings) -> WitnessApp:
    """Raises ValueError/OSError (a configuration error) on a bad key, logs file or token."""
    key = load_private_key(settings.witness_key_file, generate=settings.witness_key_generate)
    vkey = cosigner_verifier_key(settings.witness_name, key.public_key())
    if settings.witness_vkey_file is not None:
        settings.witness_vkey_file.parent.mkdir(parents=True, exist_ok=True)
        settings.witness_vkey_file.write_text(vkey + "\n")
    try:
        logs = parse_logs(settings.witness_logs_file.read_text())
    except ValueError as exc:
        raise ValueError(f"EUCAIM_WITNESS_LOGS_FILE {settings.witness_logs_file}: {exc}") from None
    if not logs:
        raise ValueError(f"EUCAIM_WITNESS_LOGS_FILE {settings.witness_logs_file} lists no log")
    token = read_secret(settings.witness_submit_token_file) or ""
    if len(token) < 16:
        raise ValueError("EUCAIM_WITNESS_SUBMIT_TOKEN_FILE holds fewer than 16 characters")
    settings.witness_state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = WitnessStore(settings.witness_state_dir / STATE_FILE)
    return WitnessApp(name=settings.witness_name, key=key, vkey=vkey, logs=logs, store=store, token=token)
