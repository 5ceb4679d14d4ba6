"""`eucaim-node up` and `eucaim-node demo`: the whole node, a sample study through it, where to look."""

from __future__ import annotations

import contextlib
import signal
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from eucaim_node.stack import SERVICES, ComponentFailed, Stack, StackSettings

from .operator import fail
from .walkthrough import NodeObserver, describe, format_log_line, push_sample

SAMPLE_INSTANCES = 20


def _start(stack: Stack) -> None:
    typer.echo(f"Starting the local node (profile {stack.settings.name!r}; first run installs Kafka, FerretDB, Orthanc)…")
    started = time.monotonic()
    try:
        stack.up(services=True)
    except ComponentFailed as error:
        raise fail(str(error), 1) from None
    typer.echo(f"All components healthy after {time.monotonic() - started:.0f} s.")


def _push_and_wait(stack: Stack, timeout: float):
    observer = NodeObserver(stack)
    try:
        with tempfile.TemporaryDirectory(prefix="eucaim-sample-") as tmp:
            typer.echo("Sending the sample study (2 CT series, 20 instances, synthetic identifiers) with storescu…")
            sample = push_sample(stack, Path(tmp))
        study_key = observer.study_key(sample.study_instance_uid)
        typer.echo(f"Waiting up to {timeout:.0f} s for it to be de-identified, catalogued and audited…")
        outcome = observer.wait_until_complete(study_key, SAMPLE_INSTANCES, timeout)
    finally:
        observer.close()
    return outcome


def _print_readiness(stack: Stack) -> None:
    """The last step of `up`: is this node ready to join EUCAIM? (`eucaim-node readiness`, as text)."""
    from eucaim_node.readiness.render import text

    from .readiness import report_for

    typer.echo("\nChecking the node against EUCAIM's onboarding (`uv run eucaim-node readiness --format html -o "
               "readiness.html` writes the report to attach to a request)…")
    typer.echo(text(report_for(stack)), nl=False)


def _follow_logs(stack: Stack) -> None:
    """Print every service's new log lines, readable, until Ctrl-C."""
    files = {name: stack.log_path(name) for name in SERVICES}
    offsets = {name: path.stat().st_size if path.exists() else 0 for name, path in files.items()}
    typer.echo("\nFollowing the services' logs (Ctrl-C stops the node)…")
    while True:
        for name, path in files.items():
            if not path.exists():
                continue
            with path.open("r", errors="replace") as handle:
                handle.seek(offsets[name])
                for line in handle:
                    if line.strip():
                        typer.echo(format_log_line(line))
                offsets[name] = handle.tell()
        time.sleep(0.5)


def _echo_safely(message: str) -> None:
    """Print, unless the terminal or pipe is gone (teardown must go on regardless)."""
    with contextlib.suppress(OSError, ValueError):
        typer.echo(message)


def _stop_on_termination() -> None:
    """SIGTERM and SIGHUP (terminal closed) stop the node like Ctrl-C does."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def _teardown(stack: Stack, message: str) -> None:
    """Stop everything this command started; further Ctrl-C, SIGTERM or a closed pipe cannot cut it short."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    _echo_safely(message)
    stack.down()


def up(
    sample: Annotated[bool, typer.Option(help="Push the bundled sample study once the node is up.")] = True,
    follow: Annotated[bool, typer.Option(help="Keep running and show logs until Ctrl-C.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the sample to be catalogued.")] = 120.0,
) -> None:
    """Start the node (installing what is missing), push the sample study, show where to look."""
    stack = Stack(StackSettings())
    if follow:
        _stop_on_termination()
    _start(stack)
    try:
        if sample:
            outcome = _push_and_wait(stack, timeout)
            typer.echo(describe(stack, outcome))
            if not outcome.complete(SAMPLE_INSTANCES):
                typer.echo(f"\nwarning: the sample was not fully processed in {timeout:.0f} s; see the logs.", err=True)
        _print_readiness(stack)
        if follow:
            _follow_logs(stack)
    except KeyboardInterrupt:
        pass
    finally:
        if follow:
            _teardown(stack, "\nStopping everything `make up` started…")
            _echo_safely(f"Stopped. Data stays in {stack.state_dir} (`make clean` removes it).")


def demo(
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the sample to be catalogued.")] = 120.0,
) -> None:
    """Non-interactive: up, push the sample, wait until catalogued and audited, summarise, tear down.

    Exits 0 only if the sample reached the research Orthanc, the catalogue, the collection
    aggregates and the audit log.
    """
    stack = Stack(StackSettings())
    _start(stack)
    try:
        outcome = _push_and_wait(stack, timeout)
        typer.echo(describe(stack, outcome))
    finally:
        _teardown(stack, "\nTearing down…")
    if not outcome.complete(SAMPLE_INSTANCES):
        typer.echo("demo FAILED: the sample study was not completely processed.", err=True)
        raise typer.Exit(1)
    typer.echo("demo OK: the sample study was de-identified, catalogued, aggregated and audited.")
