"""Generate docs/asyncapi.json, the AsyncAPI 3.0 document of the node's topics, from the code.

The document is built from the five services' FastStream routers (every subscriber and
publisher with its pydantic event model), so it cannot drift from what the services do:
``--check`` (run by the test suite) fails when the committed file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from generated_file import write_or_check

from eucaim_node.anonymisation.main import router as anonymisation
from eucaim_node.audit.main import router as audit
from eucaim_node.catalogue_sync.main import router as catalogue_sync
from eucaim_node.materialiser.main import router as materialiser
from eucaim_node.metadata.main import router as metadata
from eucaim_node.reception.main import router as reception

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.json"


def build_document() -> str:
    broker = KafkaBroker("kafka:9092", description="The node's Kafka cluster (in production: external, TLS).")
    for router in (reception, anonymisation, metadata, catalogue_sync, audit, materialiser):
        broker.include_router(router)
    spec = AsyncAPI(
        broker,
        title="eucaim-node events",
        version="1",
        description=(
            "Topics of a EUCAIM node. Messages are JSON events in a common envelope (event_id, event_type, "
            "schema_version, occurred_at, producer, causation_id, traceparent). Keys are study keys (collection IDs "
            "for collection events). No event carries pixel data or clear patient identifiers. Each consumer group "
            "has a dead-letter topic eucaim.dlq.<group>.v1 holding the original message with x-dlq-* headers."
        ),
    )
    return json.dumps(spec.to_specification().to_jsonable(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    return write_or_check(DOCUMENT, build_document(), description=__doc__.splitlines()[0], make_target="asyncapi")


if __name__ == "__main__":
    sys.exit(main())
