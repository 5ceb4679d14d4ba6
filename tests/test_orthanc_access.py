"""Who can reach the two Orthancs, tried against the real Orthanc 1.10.1 of the test stack with dcmtk's storescu.

The clinical Orthanc associates only with a listed modality (AE title and IP address) calling its own AE title;
the research Orthanc runs no DICOM server at all; each Orthanc has its own credentials, and only reception and
anonymisation hold the clinical one (docs/security.md, docs/decisions/0065).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from eucaim_node.cli.sample import SamplePatient, write_sample_study
from eucaim_node.stack import Stack
from eucaim_node.stack.dicom_tools import DicomToolError, storescu

#: A loopback address other than the stack's 127.0.0.1: Linux routes all of 127.0.0.0/8 to lo.
OTHER_HOST = "127.0.0.2"


def one_instance(tmp_path: Path, seed: str) -> tuple[Path, str]:
    patient = SamplePatient(name=f"ACCESS^{seed.upper()}", patient_id=f"ACCESS-{seed}")
    sample = write_sample_study(tmp_path / seed, patient=patient, seed=f"orthanc-access-{seed}", series=1,
                                instances_per_series=1)
    [path] = sample.files
    return path, sample.study_instance_uid


def stored(stack: Stack, uid: str) -> bool:
    found = httpx.post(f"{stack.orthanc_url('clinical')}/tools/lookup", content=uid,
                       auth=stack.orthanc_auth("clinical"), timeout=10)
    found.raise_for_status()
    return bool(found.json())


@contextmanager
def relay_from(source: str, target: tuple[str, int]) -> Iterator[int]:
    """A TCP relay on 127.0.0.1 whose outgoing connections come from ``source``, so Orthanc sees a modality at
    another address (storescu cannot choose its source address); yields the relay's port."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def pump(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            try:
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def serve() -> None:
        while not done.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(target, timeout=30, source_address=(source, 0))
            threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
            threading.Thread(target=pump, args=(client, upstream), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        done.set()
        server.close()
        thread.join(10)


def test_the_allowed_modality_stores_into_the_clinical_orthanc(stack: Stack, tmp_path: Path) -> None:
    path, uid = one_instance(tmp_path, "allowed")
    host, port, aet = stack.orthanc_dicom("clinical")
    storescu([path], host, port, aet, calling_aet=stack.local_modality_aet())
    assert stored(stack, uid)


def test_an_unlisted_calling_aet_is_refused_and_nothing_is_stored(stack: Stack, tmp_path: Path) -> None:
    path, uid = one_instance(tmp_path, "unlisted")
    host, port, aet = stack.orthanc_dicom("clinical")
    with pytest.raises(DicomToolError, match="Calling AE Title Not Recognized"):
        storescu([path], host, port, aet, calling_aet="INTRUDER")
    assert not stored(stack, uid)


def test_a_listed_aet_from_another_address_is_refused_and_nothing_is_stored(stack: Stack, tmp_path: Path) -> None:
    path, uid = one_instance(tmp_path, "elsewhere")
    host, port, aet = stack.orthanc_dicom("clinical")
    assert all(m.host != OTHER_HOST for m in stack.settings.clinical_modalities)
    with relay_from(OTHER_HOST, (host, port)) as relay_port:
        with pytest.raises(DicomToolError, match="Calling AE Title Not Recognized"):
            storescu([path], "127.0.0.1", relay_port, aet, calling_aet=stack.local_modality_aet())
    assert not stored(stack, uid)


def test_a_wrong_called_aet_is_refused(stack: Stack, tmp_path: Path) -> None:
    path, uid = one_instance(tmp_path, "called")
    host, port, _ = stack.orthanc_dicom("clinical")
    with pytest.raises(DicomToolError, match="Called AE Title Not Recognized"):
        storescu([path], host, port, "SOMEONE_ELSE", calling_aet=stack.local_modality_aet())
    assert not stored(stack, uid)


def test_the_research_orthanc_accepts_no_dicom_association(stack: Stack, tmp_path: Path) -> None:
    path, _ = one_instance(tmp_path, "research")
    host, port, aet = stack.orthanc_dicom("research")
    assert stack.status()["orthanc-research"].healthy  # it runs: only its DICOM server is off
    with pytest.raises(DicomToolError, match="Connection refused"):
        storescu([path], host, port, aet, calling_aet=stack.local_modality_aet())
    assert "dicom" not in stack.status()["orthanc-research"].endpoints


@pytest.mark.parametrize("instance,other", [("clinical", "research"), ("research", "clinical")])
def test_each_orthancs_credentials_do_not_open_the_other(stack: Stack, instance: str, other: str) -> None:
    url = f"{stack.orthanc_url(instance)}/system"
    assert httpx.get(url, auth=stack.orthanc_auth(instance), timeout=10).status_code == 200
    assert httpx.get(url, auth=stack.orthanc_auth(other), timeout=10).status_code == 401
    user, _ = stack.orthanc_auth(instance)
    assert httpx.get(url, auth=(user, stack.orthanc_auth(other)[1]), timeout=10).status_code == 401


def process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.decode().split("=", 1) for entry in raw.split(b"\0") if b"=" in entry)


@pytest.mark.parametrize("service", ["metadata", "catalogue_sync", "audit"])
def test_a_running_service_outside_the_clinical_zone_holds_no_clinical_credential(stack: Stack, service: str) -> None:
    pid = stack.process(service).pid()
    assert pid is not None, service
    env = process_environment(pid)
    clinical_file = str(stack.orthanc_password_file("clinical"))
    assert not [k for k in env if k.startswith("EUCAIM_CLINICAL_ORTHANC")], service
    assert clinical_file not in env.values()
    assert stack.orthanc_auth("clinical")[1] not in "\0".join(env.values())
    if service == "metadata":  # it reads the research Orthanc, with the research credential only
        assert env["EUCAIM_RESEARCH_ORTHANC_PASSWORD_FILE"] == str(stack.orthanc_password_file("research"))
