"""One instance through the PHI boundary where it is de-identified: in a worker process (decision 0132).

The worker fetches the file itself and stores the result itself only when nothing is left for the study's path to
decide: the instance is released, belongs to the received study (its StudyInstanceUID pseudonym is the study key)
and to a subject the caller has already checked is not withdrawn. Everything else goes back to the caller, which
decides as it always has (``StudyAnonymiser``): so a subject is never stored before its withdrawal was checked.
"""

from __future__ import annotations

from collections.abc import Callable

from eucaim_node.deid import DeidResult
from eucaim_node.orthanc import OrthancNotFound, StoredInstance

from ..ports import InstanceOutcome


def deidentify_instance(instance_id: str, *, study_key: str, cleared_subject: str | None,
                        fetch: Callable[[str], bytes], deidentify: Callable[[bytes], DeidResult],
                        store: Callable[[bytes], StoredInstance]) -> InstanceOutcome | None:
    """Fetch, de-identify and, if cleared, store one instance (the contract of ``ports.DeidentifyInstance``)."""
    try:
        data = fetch(instance_id)
    except OrthancNotFound:
        return None  # deleted meanwhile: nothing to release
    result = deidentify(data)
    if not result.released or result.study_instance_uid != study_key:
        return InstanceOutcome.of(result)  # quarantined by the caller: the bytes are not needed
    if cleared_subject and result.patient_pseudonym == cleared_subject:
        return InstanceOutcome.of(result, stored=store(result.data))
    return InstanceOutcome.of(result, data=result.data)  # the caller checks this subject's withdrawal first
