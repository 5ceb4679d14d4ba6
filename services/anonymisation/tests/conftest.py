"""A stand-in for the two Orthancs, as the anonymisation workers reach them over HTTP (decision 0132)."""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from eucaim_node.orthanc import OrthancEndpoint


@dataclass
class StandInOrthanc:
    """Serves ``GET /instances/{id}/file`` from ``files`` and records ``POST /instances``; basic auth required."""

    username: str
    password: str
    files: dict[str, bytes] = field(default_factory=dict)
    stored: list[bytes] = field(default_factory=list)
    unavailable: bool = False  # answer 503, as an overloaded Orthanc behind a proxy does
    url: str = ""

    def endpoint(self) -> OrthancEndpoint:
        return OrthancEndpoint(self.url, self.username, self.password)

    def authorised(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"


def _handler(orthanc: StandInOrthanc) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Orthanc
        disable_nagle_algorithm = True  # as Orthanc's TcpNoDelay

        def _answer(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _refused(self) -> bool:
            if not orthanc.authorised(self.headers.get("Authorization")):
                self._answer(401)
                return True
            if orthanc.unavailable:
                self._answer(503)
                return True
            return False

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self._refused():
                return
            match = re.fullmatch(r"/instances/([^/]+)/file", self.path)
            if match and match[1] in orthanc.files:
                self._answer(200, orthanc.files[match[1]], "application/dicom")
            else:
                self._answer(404)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self._refused():
                return
            if self.path != "/instances":
                self._answer(404)
                return
            orthanc.stored.append(body)
            n = len(orthanc.stored)
            self._answer(200, json.dumps({"ID": f"i{n}", "ParentStudy": "s1", "ParentSeries": "e1",
                                          "Status": "Success"}).encode())

        def log_message(self, *args) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def orthancs():
    """(clinical, research) stand-ins, each with its own credentials; reset before each use by the test."""
    servers, pair = [], []
    for role in ("clinical", "research"):
        orthanc = StandInOrthanc(f"eucaim-{role}", f"{role}-secret-pw")
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(orthanc))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        orthanc.url = f"http://127.0.0.1:{server.server_port}"
        servers.append(server)
        pair.append(orthanc)
    yield tuple(pair)
    for server in servers:
        server.shutdown()
