"""`eucaim-node job list|outputs|show|release|reject`: a data holder's egress review of processing jobs (issue 11).

What a job writes stays in its sandbox until a data holder releases it, file by file; only released files can be
downloaded by the researcher, each with its SHA-256. These commands talk to the job service's review API with a
reviewer's token (EUCAIM_JOBS_REVIEW_TOKEN_FILE); the service records every decision in the audit ledger, with the
token's name as the reviewer and the operator at the keyboard (``<user>@<host>`` or EUCAIM_OPERATOR).
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from pydantic import Field

from eucaim_node.settings import NodeSettings, ReadableFile, read_tokens

from .operator import fail, operator_name
from .search import EnvFile, load

app = typer.Typer(help="Processing jobs: review what they wrote, release or reject it (audited).",
                  no_args_is_help=True)

JobArgument = Annotated[str, typer.Argument(help="The job's uid (`eucaim-node job list`).")]
FilesArgument = Annotated[list[str], typer.Argument(help="Output names as `job outputs` lists them (job.log: the log).")]


class JobReviewCliSettings(NodeSettings):
    jobs_url: str = Field(pattern=r"^https?://\S+$", description="The job service (its review API is under /review/v1).")
    jobs_review_token_file: ReadableFile = Field(description="A data holder's `name:token` line (the first is used).")


def _request(env_file: Any, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
    settings = load(JobReviewCliSettings, env_file)
    token = next(iter(read_tokens(settings.jobs_review_token_file)), None)
    if token is None:
        raise fail(f"no token in {settings.jobs_review_token_file}")
    try:
        response = httpx.request(method, f"{settings.jobs_url.rstrip('/')}/review/v1{path}", json=body, timeout=30,
                                 headers={"authorization": f"Bearer {token}", "x-eucaim-operator": operator_name()})
    except httpx.HTTPError as exc:
        raise fail(f"the job service at {settings.jobs_url} did not answer: {exc}", 1) from None
    if response.status_code != 200:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise fail(f"{message} (HTTP {response.status_code})", 1)
    return response.content if raw else response.json()


@app.command("list")
def list_command(env_file: EnvFile = None) -> None:
    """The most recent jobs, with how many outputs wait for review."""
    jobs = _request(env_file, "GET", "/jobs")
    if not jobs:
        typer.echo("no jobs")
    for job in jobs:
        typer.echo(f"{job['uid']}  {job['state']:<13} {job['owner']:<12} {job['name']:<36} {job['tool']:<26} "
                   f"outputs {job['outputs']} (pending {job['pending']})")


def _print_outputs(outputs: list[dict[str, Any]]) -> None:
    for output in outputs:
        size = "-" if output["size"] is None else str(output["size"])
        digest = (output["sha256"] or "-")[:16]
        typer.echo(f"{output['decision']:<9} {size:>9} B  sha256 {digest:<16}  {output['name']}")
        for finding in output["findings"]:
            typer.echo(f"{'':>12}finding {finding['kind']}: {finding['detail']}")
        if output.get("reviewer"):
            typer.echo(f"{'':>12}{output['decision']} by {output['reviewer']} at {output['decidedAt']}"
                       + (f": {output['reason']}" if output.get("reason") else ""))


@app.command("outputs")
def outputs_command(job: JobArgument, env_file: EnvFile = None) -> None:
    """Every file the job left (and its log), with its size, SHA-256, automatic findings and decision."""
    answer = _request(env_file, "GET", f"/jobs/{job}")
    report = answer["report"]
    typer.echo(f"job {answer['uid']} ({answer['name']}) of {answer['owner']}: {answer['state']}, exit code "
               f"{report['exitCode']}, {report['executionDuration']} s, tool {answer['tool']}, "
               f"datasets {', '.join(answer['datasets'])}")
    for error in report["errors"]:
        typer.echo(f"  error: {error}")
    _print_outputs(answer["outputs"])


@app.command("show")
def show_command(job: JobArgument, file: Annotated[str, typer.Argument(help="One output (job.log: the log).")],
                 env_file: EnvFile = None) -> None:
    """Print one output as it lies in the sandbox, to read it before deciding (binary content is refused)."""
    from urllib.parse import quote

    content = _request(env_file, "GET", f"/jobs/{job}/outputs/{quote(file)}", raw=True)
    try:
        typer.echo(content.decode("utf-8"), nl=False)
    except UnicodeDecodeError:
        raise fail(f"{file} is not text ({len(content)} bytes); inspect it on the node", 1) from None


@app.command("release")
def release_command(job: JobArgument, files: FilesArgument,
                    despite_findings: Annotated[bool, typer.Option(
                        "--despite-findings", help="Release files that have findings (after checking each).")] = False,
                    env_file: EnvFile = None) -> None:
    """Release files: the researcher may then download them, each with its SHA-256."""
    _print_outputs(_request(env_file, "POST", f"/jobs/{job}/release",
                            {"files": files, "despiteFindings": despite_findings}))


@app.command("reject")
def reject_command(job: JobArgument, files: FilesArgument,
                   reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit log).")],
                   env_file: EnvFile = None) -> None:
    """Reject files: they never leave the node."""
    _print_outputs(_request(env_file, "POST", f"/jobs/{job}/reject", {"files": files, "reason": reason}))
