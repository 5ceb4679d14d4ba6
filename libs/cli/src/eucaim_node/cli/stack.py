"""`eucaim-node stack ...`: the local stack (Kafka, FerretDB, two Orthancs, the five services) on loopback.

Mount ``app`` as the ``stack`` group and ``status_command`` as the top-level ``status`` command.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from eucaim_node.stack import ComponentFailed, Stack, StackSettings
from eucaim_node.stack.manager import ComponentStatus
from eucaim_node.stack.process import tail_lines

from .operator import fail

app = typer.Typer(help="Install, start, check and stop the local stack (real servers on 127.0.0.1).",
                  no_args_is_help=True)


class Profile(str, Enum):
    local = "local"
    test = "test"


ProfileOption = Annotated[
    Profile,
    typer.Option("--profile", help="local: `make up` (settings from EUCAIM_STACK_*); test: the pytest profile "
                                   "(every port +10000)."),
]


def _stack(profile: Profile) -> Stack:
    if profile is Profile.test:
        return Stack(StackSettings.test_profile())
    return Stack(StackSettings())


def _table(statuses: dict[str, ComponentStatus]) -> str:
    rows = [("COMPONENT", "HEALTHY", "PID", "ENDPOINTS", "LOG")]
    for status in statuses.values():
        endpoints = " ".join(f"{k}={v}" for k, v in status.endpoints.items())
        healthy = "yes" if status.healthy else ("starting/unhealthy" if status.running else "no")
        rows.append((status.name, healthy, str(status.pid or "-"), endpoints, status.log))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)) for row in rows
    )


def _status_document(stack: Stack) -> dict[str, object]:
    statuses = stack.status()
    return {
        "profile": stack.settings.name,
        "state_dir": str(stack.state_dir),
        "node_env": str(stack.node_env_file()),
        "healthy": all(s.healthy for s in statuses.values() if s.kind == "infrastructure"),
        "components": {name: s.to_dict() for name, s in statuses.items()},
    }


def status_command(
    json_output: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    profile: ProfileOption = Profile.local,
) -> None:
    """Show each component of the local stack: endpoints, pid, health and log file (never secrets)."""
    stack = _stack(profile)
    if json_output:
        typer.echo(json.dumps(_status_document(stack), indent=2))
        return
    typer.echo(f"profile {stack.settings.name}  state {stack.state_dir}")
    typer.echo(_table(stack.status()))


app.command("status")(status_command)


@app.command()
def up(
    services: Annotated[bool, typer.Option("--services", help="Also start the five node services.")] = False,
    profile: ProfileOption = Profile.local,
) -> None:
    """Start the infrastructure (installing it on first use); healthy components are left alone."""
    stack = _stack(profile)
    try:
        stack.up(services=services)
    except ComponentFailed as error:
        raise fail(str(error), 1) from None
    for step, seconds in stack.timings.items():
        if step.startswith(("install:", "start:")):
            typer.echo(f"{step:<28} {seconds:6.1f} s")
    typer.echo(_table(stack.status()))
    typer.echo(f"services' environment: {stack.node_env_file()}")


@app.command()
def down(profile: ProfileOption = Profile.local) -> None:
    """Stop everything this profile started (SIGTERM, bounded wait, SIGKILL)."""
    stopped = _stack(profile).down()
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def restart(
    component: Annotated[str, typer.Argument(help="kafka, ferretdb, orthanc-clinical, orthanc-research or a "
                                                  "service: reception, anonymisation, metadata, "
                                                  "catalogue_sync, audit")],
    profile: ProfileOption = Profile.local,
) -> None:
    """Restart one component and wait until it is ready."""
    try:
        _stack(profile).restart(component)
    except (ComponentFailed, KeyError) as error:
        raise fail(str(error), 1) from None


@app.command()
def stop(component: str, profile: ProfileOption = Profile.local) -> None:
    """Stop one component."""
    try:
        stopped = _stack(profile).stop(component)
    except KeyError as error:
        raise fail(str(error), 1) from None
    typer.echo(f"{component}: {'stopped' if stopped else 'was not running'}")


@app.command()
def reset(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    profile: ProfileOption = Profile.local,
) -> None:
    """Stop everything and wipe the profile's state dir (Kafka, FerretDB and Orthanc data, secrets, logs)."""
    stack = _stack(profile)
    if not yes:
        typer.confirm(f"Wipe {stack.state_dir}?", abort=True)
    stack.reset()
    typer.echo(f"reset {stack.state_dir}")


@app.command()
def logs(
    component: str,
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many lines.")] = 50,
    profile: ProfileOption = Profile.local,
) -> None:
    """Print the last lines of one component's log."""
    try:
        path = _stack(profile).log_path(component)
    except KeyError as error:
        raise fail(str(error), 1) from None
    typer.echo(tail_lines(path, lines))


@app.command()
def install(profile: ProfileOption = Profile.local) -> None:
    """Install everything the stack runs (Kafka jars, FerretDB, Debian packages) without starting it."""
    try:
        timings = _stack(profile).install()
    except ComponentFailed as error:
        raise fail(str(error), 1) from None
    for step, seconds in timings.items():
        typer.echo(f"installed {step:<12} {seconds:6.1f} s")
    typer.echo("everything is installed")
