"""What each audited fact is, in DICOM PS3.15 A.5 terms (DCID 400 audit event IDs) where one fits.

Facts no DICOM event describes (aggregates recomputed, a message dead-lettered, an operator
command) get a code of the node's own system, so every record has a coded ``what``.
"""

from __future__ import annotations

from typing import TypedDict

DCM = "DCM"
DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
LOCAL = "EUCAIM-NODE"
LOCAL_SYSTEM = "urn:eucaim-node:audit-event"
EVENT_TYPE_SYSTEM = "urn:eucaim-node:event-type"


class What(TypedDict):
    system: str  # DCM or EUCAIM-NODE (DICOM codeSystemName); FHIR URIs via fhir_system()
    code: str
    display: str
    action: str  # EventActionCode: C R U D E


def _w(system: str, code: str, display: str, action: str) -> What:
    return What(system=system, code=code, display=display, action=action)


INSTANCES_TRANSFERRED = ("110104", "DICOM Instances Transferred")
INSTANCES_ACCESSED = ("110103", "DICOM Instances Accessed")
STUDY_DELETED = ("110105", "DICOM Study Deleted")
EXPORT = ("110106", "Export")
QUERY = ("110112", "Query")
AUDIT_LOG_USED = ("110101", "Audit Log Used")
SECURITY_ALERT = ("110113", "Security Alert")

#: Domain events and the audit's own kinds of record.
EVENT_WHAT: dict[str, What] = {
    # reception: the clinical Orthanc received (stored) a study's instances
    "StudyReceived": _w(DCM, *INSTANCES_TRANSFERRED, "C"),
    # anonymisation: de-identified copies created in the research Orthanc
    "StudyAnonymised": _w(DCM, *INSTANCES_TRANSFERRED, "C"),
    # anonymisation: instances held back (outcome: minor failure)
    "StudyQuarantined": _w(DCM, *INSTANCES_TRANSFERRED, "C"),
    # metadata: research instances read into the catalogue
    "StudyIndexed": _w(DCM, *INSTANCES_ACCESSED, "R"),
    "CollectionUpdated": _w(LOCAL, "collection-updated", "Collection aggregates recomputed", "U"),
    "DeadLettered": _w(LOCAL, "dead-lettered", "Message given up and dead-lettered", "E"),
    "UnreadableEvent": _w(LOCAL, "unreadable-event", "Unreadable message on an audited topic", "E"),
}

#: AccessRecorded actions (the APIs' and the CLI's) by name or prefix.
ACCESS_WHAT: dict[str, What] = {
    "federated-search": _w(DCM, *QUERY, "E"),
    "catalogue-search": _w(DCM, *QUERY, "E"),
    "catalogue-read": _w(DCM, *QUERY, "E"),
    "withdrawal": _w(DCM, *STUDY_DELETED, "D"),
    "export": _w(DCM, *EXPORT, "R"),
}
ACCESS_PREFIX_WHAT: dict[str, What] = {
    "audit-": _w(DCM, *AUDIT_LOG_USED, "R"),
}


def what_of(event_type: str, access_action: str | None = None) -> What:
    if event_type == "AccessRecorded" and access_action:
        if access_action in ACCESS_WHAT:
            return ACCESS_WHAT[access_action]
        for prefix, what in ACCESS_PREFIX_WHAT.items():
            if access_action.startswith(prefix):
                return what
        return _w(LOCAL, access_action, f"Operator or API action {access_action}", "E")
    return EVENT_WHAT.get(event_type, _w(LOCAL, event_type or "unknown", f"Event {event_type}", "E"))


def fhir_system(system: str) -> str:
    return {DCM: DCM_SYSTEM, LOCAL: LOCAL_SYSTEM}.get(system, system)


#: EventOutcomeIndicator (PS3.15 A.5.3; FHIR audit-event-outcome) of the record's outcome.
OUTCOME_CODES = {"success": "0", "minor-failure": "4", "serious-failure": "8", "major-failure": "12"}
OUTCOME_DISPLAY = {"0": "Success", "4": "Minor failure", "8": "Serious failure", "12": "Major failure"}
