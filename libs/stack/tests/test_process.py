"""ManagedProcess with small real child processes (no stack servers needed)."""

from __future__ import annotations

import json
import os
import socket
import signal
import sys
from pathlib import Path

import httpx
import pytest

from eucaim_node.stack import process as process_module
from eucaim_node.stack import ComponentFailed, ManagedProcess
from eucaim_node.stack.process import port_is_open


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health/ready" else 404); self.end_headers()
    def log_message(self, *a): pass
print("serving", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def http_service(tmp_path: Path, port: int, **kwargs: object) -> ManagedProcess:
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    url = f"http://127.0.0.1:{port}/health/ready"
    return ManagedProcess(
        name="fake",
        command=[sys.executable, str(script), str(port)],
        log_path=tmp_path / "logs" / "fake.log",
        pid_path=tmp_path / "run" / "fake.pid",
        ready=lambda: httpx.get(url, timeout=1).status_code == 200,
        ports=(port,),
        **kwargs,  # type: ignore[arg-type]
    )


def test_start_is_idempotent_and_stop_stops(tmp_path: Path) -> None:
    port = free_port()
    process = http_service(tmp_path, port, start_timeout=20, stop_timeout=5)
    process.start()
    try:
        pid = process.pid()
        assert pid is not None and process.is_healthy()
        assert json.loads(process.pid_path.read_text())["pid"] == pid
        process.start()  # already healthy: left alone
        assert process.pid() == pid
        assert "serving" in process.log_tail()
        process.restart()
        assert process.pid() not in (None, pid)
    finally:
        assert process.stop() is True
    assert process.pid() is None and not process.pid_path.exists()
    assert not port_is_open("127.0.0.1", port)
    assert process.stop() is False


def test_stale_pid_file_is_cleaned(tmp_path: Path) -> None:
    process = http_service(tmp_path, free_port())
    process.pid_path.parent.mkdir(parents=True)
    # a live pid (ours) whose command line is not the one we would have started: not ours, never signalled
    process.pid_path.write_text(json.dumps({"pid": os.getpid(), "cmdline": ["something", "else"]}))
    assert process.pid() is None
    assert not process.pid_path.exists()
    process.pid_path.write_text("garbage")
    assert process.pid() is None and not process.pid_path.exists()
    assert process.stop() is False


def test_exit_during_start_names_component_reason_and_log(tmp_path: Path) -> None:
    process = ManagedProcess(
        name="crasher",
        command=[sys.executable, "-c", "import sys; print('boom: bad config', flush=True); sys.exit(3)"],
        log_path=tmp_path / "crasher.log",
        pid_path=tmp_path / "crasher.pid",
        ready=lambda: False,
        start_timeout=20,
    )
    with pytest.raises(ComponentFailed) as failure:
        process.start()
    message = str(failure.value)
    assert "crasher" in message and "exited during start" in message and "exit code 3" in message
    assert str(tmp_path / "crasher.log") in message
    assert "boom: bad config" in message
    assert failure.value.component == "crasher"


def test_readiness_timeout_stops_the_process(tmp_path: Path) -> None:
    process = ManagedProcess(
        name="sleeper",
        command=[sys.executable, "-c", "import time; print('never ready', flush=True); time.sleep(600)"],
        log_path=tmp_path / "sleeper.log",
        pid_path=tmp_path / "sleeper.pid",
        ready=lambda: False,
        start_timeout=1.0,
        stop_timeout=5,
    )
    with pytest.raises(ComponentFailed) as failure:
        process.start()
    assert "not ready after 1 s" in str(failure.value)
    assert "never ready" in failure.value.log_tail
    assert process.pid() is None


def test_port_taken_by_a_stranger_is_reported(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        process = http_service(tmp_path, port)
        with pytest.raises(ComponentFailed, match=f"port {port} .* already in use"):
            process.start()
    assert process.pid() is None


def test_sigterm_ignored_means_sigkill(tmp_path: Path) -> None:
    process = ManagedProcess(
        name="stubborn",
        command=[sys.executable, "-c",
                 "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
                 "time.sleep(600)"],
        log_path=tmp_path / "stubborn.log",
        pid_path=tmp_path / "stubborn.pid",
        # The child's own line, not the "starting …" header (which quotes the command, 'up' included):
        # only then has it ignored SIGTERM, so stopping it needs the SIGKILL this test is about.
        ready=lambda: "\nup\n" in (tmp_path / "stubborn.log").read_text(),
        start_timeout=20,
        stop_timeout=0.5,
    )
    process.start()
    pid = process.pid()
    assert process.stop() is True
    assert process.pid() is None
    # It ignored SIGTERM, so only SIGKILL can have ended it (the reaped exit status says which).
    assert process_module._EXIT_CODES[pid] == -signal.SIGKILL


def test_orphan_with_our_exact_command_line_is_adopted(tmp_path: Path) -> None:
    port = free_port()
    process = http_service(tmp_path, port, start_timeout=20, stop_timeout=5, adopt_orphans=True)
    process.start()
    pid = process.pid()
    try:
        process.pid_path.unlink()  # e.g. `rm -rf .stack/x/run` while it runs
        assert process.pid() is None
        assert process.spawn() == pid  # adopted, not started twice
        assert process.pid() == pid
        process.pid_path.unlink()
    finally:
        assert process.stop() is True  # found by its command line
    assert not port_is_open("127.0.0.1", port)


def test_orphans_are_not_adopted_unless_asked(tmp_path: Path) -> None:
    port = free_port()
    process = http_service(tmp_path, port, start_timeout=20, stop_timeout=5)
    process.start()
    pid = process.pid()
    assert pid is not None
    process.pid_path.unlink()
    try:
        assert process.stop() is False
        with pytest.raises(ComponentFailed, match="already in use"):
            process.spawn()
    finally:
        os.kill(pid, 15)


def test_scrubbed_variables_are_not_inherited_from_the_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack's variables come from the stack: one left in the shell (a credential) does not reach the process."""
    monkeypatch.setenv("EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE", "/leaked")
    monkeypatch.setenv("EUCAIM_LOG_LEVEL", "DEBUG")  # not scrubbed: an operator's own setting passes
    process = http_service(tmp_path, free_port(), start_timeout=20, stop_timeout=5, env={"EUCAIM_GIVEN": "1"},
                           scrub_env=frozenset({"EUCAIM_GIVEN", "EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE"}))
    process.start()
    try:
        pid = process.pid()
        assert pid is not None
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"EUCAIM_GIVEN=1" in raw and b"EUCAIM_LOG_LEVEL=DEBUG" in raw
        assert not any(entry.startswith(b"EUCAIM_CLINICAL_ORTHANC_PASSWORD_FILE=") for entry in raw)
    finally:
        process.stop()
