"""`make deploy-check`: the Helm chart's workloads run for real in podman (`podman kube play`) against local
infrastructure; a study pushed into the clinical Orthanc must reach the catalogue and the witnessed ledger.

Steps: build (or reuse) the image; start a `deploy` stack profile's Kafka, FerretDB and two Orthancs on this
machine's address; render the chart with values for this machine; play every Deployment of the chart's
component list (eucaim_node.stack.kubeplay bridges what podman 4.3 lacks); wait until each answers 200 on the
chart's own probe paths; check what podman applied of the security context; push the sample study with storescu;
wait until it is de-identified, catalogued, aggregated, audited, and a head covering it is cosigned by the chart's
witness; tear everything down. Idempotent: leftovers of an interrupted run are removed first. Exit 0 only if all
held; the timings and the image size are printed.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from eucaim_node.cli.walkthrough import NodeObserver, push_sample
from eucaim_node.ledger.store import WITNESS_STATE
from eucaim_node.stack import ComponentFailed, Stack
from eucaim_node.stack.kubeplay import INFRASTRUCTURE, ComposeRun, DeployCheck, deploy_stack_settings
from eucaim_node.stack.podman import build_image
from eucaim_node.store import collections

HEALTH_TIMEOUT = 240.0
STUDY_TIMEOUT = 240.0
WITNESS_TIMEOUT = 90.0


class CheckFailed(RuntimeError):
    pass


def _phase(timings: dict[str, float], name: str, started: float) -> float:
    now = time.monotonic()
    timings[name] = now - started
    print(f"deploy-check: {name} done in {timings[name]:.0f} s", flush=True)
    return now


def check_security(check: DeployCheck) -> None:
    for played in check.played:
        applied = check.security_of(played)
        wrong = []
        if applied["user"] != "10001:10001":
            wrong.append(f"user {applied['user']}")
        if applied["read_only_root"] is not True:
            wrong.append("root file system writable")
        if applied["capabilities"]:
            wrong.append(f"capabilities {applied['capabilities']}")
        if not applied["no_new_privileges"]:
            wrong.append("privilege escalation allowed")
        if not applied["secrets_read_only"] or not all(applied["secrets_read_only"].values()):
            wrong.append(f"secret mounts {applied['secrets_read_only']}")
        if wrong:
            raise CheckFailed(f"{played.component}: {', '.join(wrong)}")
        print(f"  {played.component}: uid 10001, read-only root, no capabilities, no-new-privileges, "
              f"secrets read-only at {', '.join(applied['secrets_read_only'])}")


def wait_witnessed(observer: NodeObserver, study_key: str, study: dict | None) -> tuple[int, int]:
    """(highest leaf of the study's audit records + 1, size the chart's witness cosigned), once the second covers
    the first."""
    records = observer.audit_records_for(study_key, study)
    needed = max(int(r["leaf_index"]) for r in records) + 1
    deadline = time.monotonic() + WITNESS_TIMEOUT
    while True:
        state = observer.db[collections.AUDIT_LEDGER_STATE].find_one({"_id": WITNESS_STATE}) or {}
        cosigned = int(state.get("cosigned_size", 0))
        if cosigned >= needed or time.monotonic() > deadline:
            return needed, cosigned
        time.sleep(2)


def push_and_follow(stack: Stack, logs: Callable[[], str], seed: str) -> str:
    """Push a sample study (``seed`` makes it a new one); wait until catalogued, audited and witnessed."""
    observer = NodeObserver(stack)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sample = push_sample(stack, Path(tmp), seed=seed)
        study_key = observer.study_key(sample.study_instance_uid)
        outcome = observer.wait_until_complete(study_key, len(sample.sop_instance_uids), STUDY_TIMEOUT)
        if not outcome.complete(len(sample.sop_instance_uids)):
            raise CheckFailed(f"the study did not get through: {outcome}\n{logs()}")
        needed, cosigned = wait_witnessed(observer, study_key, outcome.catalogue_study)
        if cosigned < needed:
            raise CheckFailed(f"the witness cosigned size {cosigned}, the study's records need {needed}\n{logs()}")
        return (f"study {study_key[:16]}...: {outcome.research_instances} instances in the research Orthanc, catalogued, "
                f"audit actions {sorted(set(outcome.audit_actions))}; its records are leaves < {needed}, the witness "
                f"cosigned size {cosigned}")
    finally:
        observer.close()


def run_compose(check: DeployCheck, stack: Stack) -> None:
    """docker-compose.yml's image services (same image, same settings) on the same infrastructure."""
    # A fresh node: the chart's run left a ledger witnessed by the chart's witness, and the compose witness is
    # another one (its own state volume), which rightly refuses a log it has not seen grow (decision 0055).
    with stack.mongo_client() as client:
        client.drop_database(stack.settings.mongo_database)
    compose = ComposeRun(check)
    try:
        # As make-secrets.sh leaves them for an operator whose group is 1000 (not the image's 10001): readable only
        # through group_add, which this exercises.
        compose.start(secrets_gid=1000)
        statuses = compose.wait_ready(HEALTH_TIMEOUT)
        if any(code != 200 for code in statuses.values()):
            raise CheckFailed(f"compose services not ready: {statuses}\n" + "\n".join(
                f"--- {n}\n{compose.logs(n)}" for n, c in statuses.items() if c != 200))
        print(f"deploy-check: compose services ready on /health/ready: {', '.join(statuses)} "
              f"(endpoints rewritten to this machine: {sorted({k for v in compose.rewritten.values() for k in v})})")
        line = push_and_follow(stack, lambda: "\n".join(f"--- {n}\n{compose.logs(n)}" for n in compose.containers),
                               seed="deploy-check-compose")
        print(f"  compose: {line}")
    finally:
        compose.stop()


def run(shift: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    started = time.monotonic()
    image = build_image()
    print(f"deploy-check: image {image.tag}, {image.size_mb:.0f} MB", flush=True)
    step = _phase(timings, "image", started)
    settings = deploy_stack_settings(shift)
    stack = Stack(settings)
    check = DeployCheck.create(settings, image.tag, shift)
    check.tear_down()
    stack.reset()
    try:
        for name in INFRASTRUCTURE:
            stack.start(name)
        step = _phase(timings, "infrastructure", step)
        objects = check.render()
        check.play(objects)
        print(f"deploy-check: played {', '.join(p.component for p in check.played)}; not run by kube play: "
              + "; ".join(f"{kind} ({len(names)})" for kind, names in sorted(check.not_run.items())), flush=True)
        statuses = check.wait_healthy(HEALTH_TIMEOUT)
        unhealthy = {c: s for c, s in statuses.items() if any(code != 200 for code in s.values())}
        if unhealthy:
            details = "\n".join(f"--- {p.component}: {statuses[p.component]}\n{check.logs(p)}"
                                for p in check.played if p.component in unhealthy)
            raise CheckFailed(f"not healthy on the chart's probe paths: {unhealthy}\n{details}")
        for played in check.played:
            print(f"  {played.component}: " + ", ".join(f"{k} {played.probes[k]} 200" for k in played.probes))
        check_security(check)
        step = _phase(timings, "play and healthy", step)
        line = push_and_follow(stack, lambda: "\n".join(f"--- {p.component}\n{check.logs(p)}" for p in check.played),
                               seed="deploy-check-chart")
        print(f"  chart: {line}")
        restarts = {p.component: check.security_of(p)["restarts"] for p in check.played}
        if any(restarts.values()):
            raise CheckFailed(f"containers restarted during the check: {restarts}")
        step = _phase(timings, "study through", step)
        check.stop_pods()
        run_compose(check, stack)
        step = _phase(timings, "compose services", step)
    finally:
        check.tear_down()
        stack.down()
    stack.reset()
    _phase(timings, "tear down", step)
    timings["total"] = time.monotonic() - started
    return timings


def main() -> int:
    shift = int(os.environ.get("EUCAIM_TEST_PORT_SHIFT", "0"))
    try:
        timings = run(shift)
    except (CheckFailed, ComponentFailed) as exc:
        print(f"deploy-check FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"deploy-check OK in {timings['total']:.0f} s (" +
          ", ".join(f"{k} {v:.0f} s" for k, v in timings.items() if k != "total") + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
