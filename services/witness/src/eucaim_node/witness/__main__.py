"""``python -m eucaim_node.witness``: the witness process (settings from ``EUCAIM_WITNESS_*``)."""

import logging
import sys

import uvicorn

from eucaim_node.ledger import SigningKeyError
from eucaim_node.runtime.settings import ConfigurationError, exit_on_arguments, load_settings
from eucaim_node.telemetry import configure_logging

from .config import WitnessSettings
from .main import NAME, create_app

if __name__ == "__main__":
    exit_on_arguments(NAME, WitnessSettings)
    settings = load_settings(WitnessSettings)
    configure_logging(NAME, level=settings.log_level, fmt=settings.log_format)
    try:
        app = create_app(settings)
    except (OSError, ValueError, SigningKeyError) as exc:
        print(f"configuration error in {NAME}: {exc}", file=sys.stderr)
        raise ConfigurationError(2) from None
    uvicorn.run(app, host=settings.witness_host, port=settings.witness_port, log_config=None,
                log_level=getattr(logging, settings.log_level), access_log=False, lifespan="on")
