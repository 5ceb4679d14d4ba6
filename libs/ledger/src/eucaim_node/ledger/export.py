"""Audit records as FHIR AuditEvent (R5 and R4B) and as DICOM PS3.15 A.5 audit messages.

A record (see ``eucaim_node.audit.core.records``) holds: ``what`` (coded event and action),
``outcome``, ``who`` and ``requestor``, ``occurred_at``/``recorded_at``, ``entities`` (pseudonymous
keys only), ``event_id``, ``causation_id``, ``traceparent``, ``detail`` and its ledger position
(``leaf_index``, ``leaf_hash``). Exports carry the ledger position, so an exported event can be
tied back to an inclusion proof.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from .canonical import format_time
from .ports import LedgerReader
from .codes import (
    DCM,
    EVENT_TYPE_SYSTEM,
    LOCAL,
    LOCAL_SYSTEM,
    OUTCOME_CODES,
    OUTCOME_DISPLAY,
    fhir_system,
)

OUTCOME_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-event-outcome"
OBJECT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/object-role"
ENTITY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
SOURCE_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/security-source-type"
LEAF_INDEX_URL = "urn:eucaim-node:ledger-leaf-index"
LEAF_HASH_URL = "urn:eucaim-node:ledger-leaf-hash"

#: How each kind of entity is identified: (FHIR identifier system, DICOM ParticipantObjectIDTypeCode,
#: ParticipantObjectTypeCode, ParticipantObjectTypeCodeRole).
ENTITY_KINDS: dict[str, tuple[str, tuple[str, str, str], str, str]] = {
    "study": ("urn:dicom:uid", ("110180", DCM, "Study Instance UID"), "2", "3"),
    "subject": ("urn:eucaim-node:subject-pseudonym", ("2", "RFC-3881", "Patient Number"), "1", "1"),
    "collection": ("urn:eucaim-node:collection", ("collection", LOCAL, "Collection ID"), "2", "7"),
    "research-study": ("urn:eucaim-node:research-orthanc-study", ("research-orthanc-study", LOCAL, "Research Orthanc study ID"), "2", "4"),
    "topic": ("urn:eucaim-node:kafka-topic", ("kafka-topic", LOCAL, "Kafka topic"), "2", "4"),
    "target": ("urn:eucaim-node:target", ("target", LOCAL, "Target of an operator or API action"), "2", "4"),
    "event": ("urn:eucaim-node:event-id", ("event-id", LOCAL, "Event ID"), "2", "4"),
}
ROLE_DISPLAY = {"1": "Patient", "3": "Report", "4": "Domain Resource", "7": "List"}


def _time(value: Any) -> str | None:
    if isinstance(value, datetime):
        return format_time(value)
    return value if isinstance(value, str) else None


def _outcome(record: dict[str, Any]) -> str:
    return OUTCOME_CODES.get(record.get("outcome") or "success", "8")


def _details(record: dict[str, Any]) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = [(k, v) for k, v in sorted((record.get("detail") or {}).items())]
    for key in ("causation_id", "traceparent"):
        if record.get(key):
            pairs.append((key, record[key]))
    return [(k, v) for k, v in pairs if v is not None]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def _entities(record: dict[str, Any]) -> list[dict[str, str]]:
    entities = [e for e in record.get("entities") or () if e.get("key")]
    event_id = record.get("event_id") or record["_id"]
    return [*entities, {"kind": "event", "key": str(event_id)}]


def _identifier(kind: str, key: str) -> dict[str, str]:
    system = ENTITY_KINDS.get(kind, ENTITY_KINDS["target"])[0]
    if system == "urn:dicom:uid":
        return {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{key}"}
    return {"system": system, "value": key}


# -- FHIR -----------------------------------------------------------------------------------------------------

def _ledger_extensions(record: dict[str, Any]) -> list[dict[str, Any]]:
    extensions: list[dict[str, Any]] = []
    if record.get("leaf_index") is not None:
        extensions.append({"url": LEAF_INDEX_URL, "valueInteger": int(record["leaf_index"])})
    if record.get("leaf_hash"):
        extensions.append({"url": LEAF_HASH_URL, "valueString": record["leaf_hash"]})
    return extensions


def fhir_r5(record: dict[str, Any], *, origin: str) -> dict[str, Any]:
    """FHIR R5 AuditEvent (plain JSON; validate with ``fhir.resources.auditevent.AuditEvent``)."""
    what = record["what"]
    outcome = _outcome(record)
    entities = []
    for entity in _entities(record):
        kind, key = entity["kind"], entity["key"]
        role = ENTITY_KINDS.get(kind, ENTITY_KINDS["target"])[3]
        item: dict[str, Any] = {
            "what": {"identifier": _identifier(kind, key), "display": f"{kind} {key}"},
            "role": {"coding": [{"system": OBJECT_ROLE_SYSTEM, "code": role, "display": ROLE_DISPLAY.get(role, role)}]},
        }
        if kind == "event":
            details = []
            for name, value in _details(record):
                detail: dict[str, Any] = {"type": {"text": name}}
                if isinstance(value, bool):
                    detail["valueBoolean"] = value
                elif isinstance(value, int) and -(2**31) <= value < 2**31:
                    detail["valueInteger"] = value
                else:
                    detail["valueString"] = _scalar(value)
                details.append(detail)
            if details:
                item["detail"] = details
        entities.append(item)
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": record["_id"],
        "category": [{"coding": [{"system": fhir_system(what["system"]), "code": what["code"], "display": what["display"]}]}],
        "code": {"coding": [{"system": EVENT_TYPE_SYSTEM, "code": record["action"]}], "text": record["action"]},
        "action": what["action"],
        "recorded": _time(record.get("recorded_at")),
        "outcome": {"code": {"system": OUTCOME_SYSTEM, "code": outcome, "display": OUTCOME_DISPLAY[outcome]}},
        "agent": [{
            "who": {"identifier": {"system": "urn:eucaim-node:actor", "value": record.get("who") or "unknown"},
                    "display": record.get("who") or "unknown"},
            "requestor": bool(record.get("requestor")),
        }],
        "source": {
            "observer": {"identifier": {"system": "urn:eucaim-node:audit-source", "value": origin}, "display": origin},
            "type": [{"coding": [{"system": SOURCE_TYPE_SYSTEM, "code": "4", "display": "Application Server"}]}],
        },
        "entity": entities,
    }
    occurred = _time(record.get("occurred_at"))
    if occurred:
        resource["occurredDateTime"] = occurred
    if record.get("outcome_detail"):
        resource["outcome"]["detail"] = [{"text": record["outcome_detail"]}]
    if extensions := _ledger_extensions(record):
        resource["extension"] = extensions
    return resource


def fhir_r4b(record: dict[str, Any], *, origin: str) -> dict[str, Any]:
    """FHIR R4B AuditEvent (validate with ``fhir.resources.R4B.auditevent.AuditEvent``)."""
    what = record["what"]
    entities = []
    for entity in _entities(record):
        kind, key = entity["kind"], entity["key"]
        _, _, type_code, role = ENTITY_KINDS.get(kind, ENTITY_KINDS["target"])
        item: dict[str, Any] = {
            "what": {"identifier": _identifier(kind, key), "display": f"{kind} {key}"},
            "type": {"system": ENTITY_TYPE_SYSTEM, "code": type_code},
            "role": {"system": OBJECT_ROLE_SYSTEM, "code": role, "display": ROLE_DISPLAY.get(role, role)},
        }
        if kind == "event":
            details = [{"type": name, "valueString": _scalar(value)} for name, value in _details(record)]
            if details:
                item["detail"] = details
        entities.append(item)
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": record["_id"],
        "type": {"system": fhir_system(what["system"]), "code": what["code"], "display": what["display"]},
        "subtype": [{"system": EVENT_TYPE_SYSTEM, "code": record["action"]}],
        "action": what["action"],
        "recorded": _time(record.get("recorded_at")),
        "outcome": _outcome(record),
        "agent": [{
            "who": {"identifier": {"system": "urn:eucaim-node:actor", "value": record.get("who") or "unknown"},
                    "display": record.get("who") or "unknown"},
            "requestor": bool(record.get("requestor")),
        }],
        "source": {
            "site": origin,
            "observer": {"identifier": {"system": "urn:eucaim-node:audit-source", "value": origin}, "display": origin},
            "type": [{"system": SOURCE_TYPE_SYSTEM, "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    }
    occurred = _time(record.get("occurred_at"))
    if occurred:
        resource["period"] = {"start": occurred, "end": occurred}
    if record.get("outcome_detail"):
        resource["outcomeDesc"] = record["outcome_detail"]
    if extensions := _ledger_extensions(record):
        resource["extension"] = extensions
    return resource


# -- DICOM PS3.15 A.5 ---------------------------------------------------------------------------------------

def _coded(parent: ET.Element, tag: str, code: str, system: str, text: str) -> ET.Element:
    return ET.SubElement(parent, tag, {"csd-code": code, "codeSystemName": system, "originalText": text})


def dicom_audit_message(record: dict[str, Any], *, origin: str, site: str | None = None) -> str:
    """One DICOM PS3.15 A.5 ``AuditMessage`` (XML, UTF-8, one line)."""
    what = record["what"]
    message = ET.Element("AuditMessage")
    event = ET.SubElement(message, "EventIdentification", {
        "EventActionCode": what["action"],
        "EventDateTime": _time(record.get("occurred_at")) or _time(record.get("recorded_at")) or "",
        "EventOutcomeIndicator": _outcome(record),
    })
    _coded(event, "EventID", what["code"], what["system"], what["display"])
    _coded(event, "EventTypeCode", record["action"], LOCAL, record["action"])
    if record.get("outcome_detail"):
        ET.SubElement(event, "EventOutcomeDescription").text = record["outcome_detail"]
    ET.SubElement(message, "ActiveParticipant", {
        "UserID": record.get("who") or "unknown",
        "UserIsRequestor": "true" if record.get("requestor") else "false",
    })
    source = ET.SubElement(message, "AuditSourceIdentification",
                           {**({"AuditEnterpriseSiteID": site} if site else {}), "AuditSourceID": origin})
    ET.SubElement(source, "AuditSourceTypeCode", {"csd-code": "4", "codeSystemName": DCM,
                                                  "originalText": "Application Server process tier in a multi-tier system"})
    for entity in _entities(record):
        kind, key = entity["kind"], entity["key"]
        _, (code, system, text), type_code, role = ENTITY_KINDS.get(kind, ENTITY_KINDS["target"])
        obj = ET.SubElement(message, "ParticipantObjectIdentification", {
            "ParticipantObjectID": key, "ParticipantObjectTypeCode": type_code, "ParticipantObjectTypeCodeRole": role})
        _coded(obj, "ParticipantObjectIDTypeCode", code, system, text)
        if kind == "event":
            pairs = _details(record)
            if record.get("leaf_index") is not None:
                pairs = [("ledger-leaf-index", record["leaf_index"]), ("ledger-leaf-hash", record.get("leaf_hash")), *pairs]
            for name, value in pairs:
                if value is None:
                    continue
                ET.SubElement(obj, "ParticipantObjectDetail",
                              {"type": name, "value": base64.b64encode(_scalar(value).encode()).decode()})
    return ET.tostring(message, encoding="unicode")


__all__ = ["LOCAL_SYSTEM", "dicom_audit_message", "fhir_r4b", "fhir_r5"]


def fhir_validator(version: str) -> Callable[[dict[str, Any]], Any]:
    """The ``fhir.resources`` model check of an AuditEvent of FHIR ``version`` ("R5" or "R4B")."""
    if version == "R5":
        from fhir.resources.auditevent import AuditEvent
    else:
        from fhir.resources.R4B.auditevent import AuditEvent
    return AuditEvent.model_validate


async def export_lines(reader: LedgerReader, since: datetime, until: datetime | None, *, origin: str,
                       fhir_version: str | None) -> AsyncIterator[str]:
    """The records recorded in [since, until), in leaf order, one line each: FHIR AuditEvent JSON of
    ``fhir_version`` ("R5"/"R4B"), validated, or (None) a DICOM PS3.15 A.5 audit message."""
    if fhir_version is not None:
        validate = fhir_validator(fhir_version)
        to_fhir = fhir_r5 if fhir_version == "R5" else fhir_r4b
    async for record in reader.records_recorded(since, until):
        if fhir_version is None:
            yield dicom_audit_message(record, origin=origin)
            continue
        resource = to_fhir(record, origin=origin)
        validate(resource)  # a resource that does not validate never leaves the node
        yield json.dumps(resource, separators=(",", ":"))
