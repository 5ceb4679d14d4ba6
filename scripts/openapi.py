"""Generate docs/openapi.json, the OpenAPI document of the node's federation HTTP API, from the code.

The document is what FastAPI derives from catalogue-sync's routes and their pydantic models
(``eucaim_node.catalogue_sync.adapters.inbound``), so it cannot drift from what the service answers:
``--check`` (run by the test suite) fails when the committed file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from generated_file import write_or_check

from eucaim_node.catalogue_sync.adapters.inbound.http import described_api

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def build_document() -> str:
    return json.dumps(described_api(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    return write_or_check(DOCUMENT, build_document(), description=__doc__.splitlines()[0], make_target="openapi")


if __name__ == "__main__":
    sys.exit(main())
