"""The Orthanc client against a stand-in HTTP server that answers as Orthanc does (gzip when the client accepts it)."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eucaim_node.orthanc import OrthancAnswerTooLarge, OrthancClient, OrthancSession, OrthancUnavailable
from eucaim_node.orthanc.settings import OrthancEndpoint

FILE = bytes(range(256)) * 64


class _Orthanc(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        accepted = self.headers.get("Accept-Encoding", "")
        self.seen.append(accepted)
        body, extra = FILE, {}
        if self.path.endswith("/cut/archive"):  # promises the whole body, sends half of it and hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(len(FILE)))
            self.end_headers()
            self.wfile.write(FILE[: len(FILE) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.endswith("/unannounced/archive"):  # no Content-Length: the body ends when the connection does
            self.send_response(200)
            self.end_headers()
            self.wfile.write(FILE)
            self.close_connection = True
            return
        if self.path.endswith("/busy/file"):  # an overloaded Orthanc behind a proxy
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if "gzip" in accepted:  # Orthanc's HttpCompressionEnabled: compress for a client that accepts it
            body, extra = gzip.compress(FILE), {"Content-Encoding": "gzip"}
        self.send_response(200)
        for name, value in {"Content-Type": "application/dicom", "Content-Length": str(len(body)), **extra}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def orthanc():
    _Orthanc.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Orthanc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


async def test_instance_files_are_fetched_uncompressed(orthanc):
    """Decision 0090: Orthanc gzips a file for any client that accepts gzip (requests does by default), the
    largest CPU cost of the pipeline on both sides; the client asks for the file as stored."""
    client = OrthancClient(OrthancEndpoint(url=orthanc, username="u", password="p"))
    assert await client.instance_file("abc") == FILE
    assert _Orthanc.seen == ["identity"]


async def test_an_archive_is_streamed_to_a_file_as_is_and_a_cut_answer_is_an_error(orthanc, tmp_path):
    """Decision 0130: ``/series/{id}/archive`` goes to disk chunk by chunk; an answer that ends before its
    announced length raises (the delivery layer retries) instead of leaving a short file that looks complete."""
    client = OrthancClient(OrthancEndpoint(url=orthanc, username="u", password="p"))
    target = tmp_path / "series.zip.part"
    assert await client.download_archive("series", "abc", target) == len(FILE)
    assert target.read_bytes() == FILE and _Orthanc.seen == ["identity"]
    with pytest.raises(OrthancUnavailable, match="cut short"):
        await client.download_archive("series", "cut", target)


async def test_an_archive_larger_than_the_limit_is_refused_and_never_written_past_it(orthanc, tmp_path):
    """An answer that announces more than ``limit`` is refused unread; one that does not announce its length
    stops being read at the chunk that crosses the limit, and the file never holds more than ``limit`` bytes."""
    client = OrthancClient(OrthancEndpoint(url=orthanc, username="u", password="p"))
    target = tmp_path / "series.zip.part"
    assert await client.download_archive("series", "abc", target, limit=len(FILE)) == len(FILE)
    for resource in ("abc", "unannounced"):
        target.write_bytes(b"left over")
        with pytest.raises(OrthancAnswerTooLarge, match=f"at most {len(FILE) - 1}|more than {len(FILE) - 1}"):
            await client.download_archive("series", resource, target, limit=len(FILE) - 1)
        assert target.stat().st_size <= len(FILE) - 1
    assert await client.download_archive("series", "unannounced", target, limit=len(FILE)) == len(FILE)
    assert target.read_bytes() == FILE
async def test_an_orthanc_answering_503_is_unavailable_after_the_librarys_retries(orthanc):
    """orthanc-api-client retries 502/503, then urllib3 raises RetryError, which the library turned into a None
    answer (AttributeError in the caller): a dead-lettered message instead of a retried one."""
    with pytest.raises(OrthancUnavailable, match="HTTP 503"):
        await OrthancClient(OrthancEndpoint(url=orthanc, username="u", password="p")).instance_file("busy")
    with pytest.raises(OrthancUnavailable, match="HTTP 503"):
        OrthancSession(OrthancEndpoint(url=orthanc, username="u", password="p")).instance_file("busy")


def test_the_environment_is_read_once_per_session_with_the_same_result(monkeypatch):
    """The session stops requests from reading the environment on every request (decision 0132); what it would have
    read still applies: a proxy for an Orthanc not in NO_PROXY, none for one in it, the CA bundle."""
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/hospital-ca.pem")
    proxied = OrthancSession(OrthancEndpoint(url="http://orthanc.example:8042", username="u", password="p")).api
    direct = OrthancSession(OrthancEndpoint(url="http://direct.example:8042", username="u", password="p")).api
    assert proxied._http_session.proxies.get("http") == "http://proxy.example:3128"
    assert "http" not in direct._http_session.proxies
    assert proxied._http_session.verify == "/etc/hospital-ca.pem"
    assert not proxied._http_session.trust_env
