"""The two Orthancs as anonymisation needs them: what OrthancClient offers, plus lookups by subject and sender."""

from __future__ import annotations

import hashlib
import logging

from eucaim_node.orthanc import OrthancClient, OrthancNotFound, OrthancUnavailable

log = logging.getLogger("eucaim_node.anonymisation")


def orthanc_patient_id(patient_id: str) -> str:
    """Orthanc's resource ID of a patient: the SHA-1 of its PatientID, in five dash-separated groups."""
    digest = hashlib.sha1(patient_id.strip().encode()).hexdigest()
    return "-".join(digest[i:i + 8] for i in range(0, 40, 8))


class ClinicalOrthanc(OrthancClient):
    async def calling_aet(self, instance_id: str) -> str | None:
        """AE title of the modality that sent this instance (Orthanc's RemoteAET metadata), if recorded."""
        try:
            metadata = await self.get_json(f"instances/{instance_id}/metadata?expand")
        except (OrthancUnavailable, OrthancNotFound):
            raise
        except Exception as exc:  # an Orthanc without ?expand, or no metadata: rules simply do not see an AET
            log.warning("calling AE title not readable", extra={"error": type(exc).__name__})
            return None
        value = metadata.get("RemoteAET") if isinstance(metadata, dict) else None
        return str(value).strip()[:16] or None if value else None


    async def department(self, instance_id: str) -> str | None:
        """InstitutionalDepartmentName (0008,1040) of this instance, for the screening rules (de-identification
        removes it from what the research side sees)."""
        value = (await self.instance_tags(instance_id)).get("InstitutionalDepartmentName")
        return str(value) if isinstance(value, str) and value.strip() else None


class ResearchOrthanc(OrthancClient):
    async def subject_study_ids(self, subject_key: str) -> list[str]:
        """Orthanc IDs of the research studies whose (de-identified) PatientID is ``subject_key``."""
        try:
            patient = await self.get_json(f"patients/{orthanc_patient_id(subject_key)}")
        except OrthancNotFound:
            return []
        return list(patient.get("Studies", ()))

    async def study_key(self, study_id: str) -> str | None:
        try:
            study = await self.study(study_id)
        except OrthancNotFound:
            return None
        return study.get("MainDicomTags", {}).get("StudyInstanceUID")
