"""EUCAIM onboarding readiness: each check asks the node (through :class:`NodeProbe`) and says pass, warn or fail,
with the evidence and what to do.

The areas follow EUCAIM's onboarding of a data holder: Tier 1 (a HealthDCAT-AP catalogue, valid against the
official shapes, harvested and pushed), Tier 2 (the federated search: authenticated, answering the explorer's
requests, protecting small cells, with the minimum attributes in the data), Tier 3 (datasets verified, where the
node offers it), de-identification, security and data quality. A probe that raises makes its check fail with the
error as evidence: a component that is down is a failure of every check that needed it, each saying so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from rdflib import Graph
from rdflib.namespace import DCAT, RDF

from eucaim_node.catalogue import dcat
from eucaim_node.catalogue.quality import FLAGS, MINIMUM_TAGS
from eucaim_node.catalogue.shacl import validate

from .ports import NodeProbe


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


AREAS = {
    "tier1": "Tier 1: catalogue (HealthDCAT-AP)",
    "tier2": "Tier 2: federated search",
    "tier3": "Tier 3: datasets",
    "deid": "De-identification",
    "security": "Security",
    "quality": "Data quality",
}


@dataclass(frozen=True)
class Check:
    id: str
    area: str  # a key of AREAS
    title: str
    status: Status
    evidence: str
    action: str = ""  # what to do; empty when it passes

    def as_dict(self) -> dict[str, str]:
        return {**dataclasses.asdict(self), "status": self.status.value}


@dataclass(frozen=True)
class Report:
    node: str
    generated_at: datetime
    checks: tuple[Check, ...]

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status is status)

    @property
    def ready(self) -> bool:
        return self.count(Status.FAIL) == 0

    @property
    def exit_code(self) -> int:
        """Non-zero on any failure (warnings do not stop an onboarding request)."""
        return 0 if self.ready else 1

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "generated_at": self.generated_at.isoformat(timespec="seconds"),
                "ready": self.ready, "summary": {s.value: self.count(s) for s in Status},
                "checks": [c.as_dict() for c in self.checks]}


def _error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 400 else text[:397] + "..."


class Checker:
    """Runs the checks against one probe (memoising what several checks ask)."""

    def __init__(self, probe: NodeProbe) -> None:
        self.probe = probe
        self._memo: dict[str, Any] = {}

    def _once(self, key: str, ask: Callable[[], Any]) -> Any:
        if key not in self._memo:
            try:
                self._memo[key] = ask()
            except Exception as exc:  # the node's answer, not ours: reported as evidence, never raised
                self._memo[key] = exc
        value = self._memo[key]
        if isinstance(value, Exception):
            raise value
        return value

    def run(self, now: datetime | None = None) -> Report:
        checks: list[Check] = []
        for check in CHECKS:
            area, cid, title, action = CHECK_INFO[check.__name__]
            store = next((c for c in checks if c.id == "store"), None)
            if check.__name__ in NEEDS_STORE and store is not None and store.status is Status.FAIL:
                # Asking would only wait for the same timeout again: the store check already says what is wrong.
                checks.append(Check(cid, area, title, Status.FAIL, "not checked: the store is unreachable (see the "
                                                                   "store check)", store.action))
                continue
            try:
                checks.append(check(self))
            except Exception as exc:
                checks.append(Check(cid, area, title, Status.FAIL, f"could not be checked: {_error(exc)}", action))
        return Report(self.probe.node_name(), now or datetime.now(UTC), tuple(checks))


CHECKS: list[Callable[[Checker], Check]] = []
CHECK_INFO: dict[str, tuple[str, str, str, str]] = {}
NEEDS_STORE: set[str] = set()  # checks whose answer comes from the store (directly or through the node's API)


def check(area: str, cid: str, title: str, action: str, *, needs_store: bool = True
          ) -> Callable[[Callable[[Checker], Check]], Callable[[Checker], Check]]:
    """Register a check; ``action`` is what to do when it cannot even be evaluated."""
    def register(fn: Callable[[Checker], Check]) -> Callable[[Checker], Check]:
        CHECKS.append(fn)
        CHECK_INFO[fn.__name__] = (area, cid, title, action)
        if needs_store:
            NEEDS_STORE.add(fn.__name__)
        return fn
    return register


def _result(fn_name: str, status: Status, evidence: str, action: str = "") -> Check:
    area, cid, title, default_action = CHECK_INFO[fn_name]
    return Check(cid, area, title, status, evidence, "" if status is Status.PASS else (action or default_action))


# -- the store first: most checks need it ---------------------------------------------------------------------------

@check("security", "store", "The catalogue store (MongoDB) answers",
       "Start the store (`eucaim-node status` shows which component is down; `make up` starts everything).", needs_store=False)
def store_reachable(c: Checker) -> Check:
    try:
        described = c._once("store", c.probe.store_ping)
    except Exception as exc:
        return _result("store_reachable", Status.FAIL, f"store unreachable: {_error(exc)}")
    return _result("store_reachable", Status.PASS, described)


# -- Tier 1 ------------------------------------------------------------------------------------------------------

@check("tier1", "catalogue-valid", "Catalogue conforms to HealthDCAT-AP R8 NON_PUBLIC (official SHACL shapes)",
       "Make catalogue-sync answer GET /catalogue (its log says why not), then fix what the shapes report "
       "(`eucaim-node catalogue check`).")
def catalogue_valid(c: Checker) -> Check:
    answer = c._once("catalogue", c.probe.catalogue)
    if answer.status != 200:
        return _result("catalogue_valid", Status.FAIL, f"GET /catalogue answered HTTP {answer.status}: {str(answer.body)[:200]}")
    graph = Graph().parse(data=answer.body, format="turtle")
    datasets = len(set(graph.subjects(RDF.type, DCAT.Dataset)))
    if not datasets:
        return _result("catalogue_valid", Status.FAIL, "the catalogue lists no dataset yet",
                       "Send at least one study: a collection is published once it holds one.")
    report = validate(graph)
    if not report.conforms:
        first = "; ".join(f"{v.focus.rsplit('/', 1)[-1]} {(v.path or '').rsplit('#', 1)[-1]}: {v.message}"[:160]
                          for v in report.violations[:3])
        return _result("catalogue_valid", Status.FAIL, f"{len(report.violations)} SHACL violation(s) in {datasets} "
                                                       f"dataset(s); first: {first}")
    return _result("catalogue_valid", Status.PASS, f"{datasets} dataset(s), {len(graph)} triples: 0 violations, "
                                                   f"{len(report.warnings)} recommendation warning(s)")


PLACEHOLDERS = ("localhost", "example", "unconfigured")


@check("tier1", "catalogue-mandatory", "Every collection has the mandatory descriptive metadata, not placeholders",
       "Describe your collections in your own collections file (EUCAIM_COLLECTIONS_FILE; docs/federation.md).", needs_store=False)
def catalogue_mandatory(c: Checker) -> Check:
    config = c._once("config", c.probe.collections_config)
    missing, placeholders = [], []
    for collection in config.collections:
        resolved = config.resolved(collection.id)
        try:
            dcat.add_dataset(dcat.new_graph(), config, resolved, dcat.CollectionFacts(studies=None, subjects=None))
        except dcat.MissingMetadata as exc:
            missing.append(str(exc))
        texts = [config.catalogue.base_uri, resolved.publisher.email if resolved.publisher else "",
                 resolved.hdab.email if resolved.hdab else "", resolved.publisher.name if resolved.publisher else ""]
        if any(p in t.lower() for t in texts for p in PLACEHOLDERS):
            placeholders.append(collection.id)
    names = ", ".join(c.id for c in config.collections)
    if missing:
        return _result("catalogue_mandatory", Status.FAIL, "; ".join(missing))
    if placeholders:
        return _result("catalogue_mandatory", Status.WARN, f"collections {', '.join(placeholders)} are described with "
                                                           f"placeholder publisher, HDAB or base URI")
    return _result("catalogue_mandatory", Status.PASS, f"{len(config.collections)} collection(s) ({names}) fully described")


@check("tier1", "harvest", "Harvesters can read the catalogue and each dataset (Turtle and JSON-LD)",
       "Check catalogue-sync's HTTP port and its log.")
def harvest(c: Checker) -> Check:
    config = c._once("config", c.probe.collections_config)
    jsonld = c.probe.catalogue("jsonld")
    answers = {col.id: c.probe.dataset(col.id).status for col in config.collections}
    published = [cid for cid, status in answers.items() if status == 200]
    broken = {cid: status for cid, status in answers.items() if status not in (200, 404)}
    if jsonld.status != 200 or broken:
        return _result("harvest", Status.FAIL, f"GET /catalogue?format=jsonld: HTTP {jsonld.status}; datasets: "
                                               + ", ".join(f"{k} HTTP {v}" for k, v in answers.items()))
    if not published:
        return _result("harvest", Status.WARN, "no collection has a published version yet",
                       "Send a study; each collection is published once it holds one.")
    return _result("harvest", Status.PASS, f"catalogue in JSON-LD and {len(published)} dataset(s) readable: "
                                           f"{', '.join(published)}"
                                           + (f"; not yet published: {', '.join(sorted(set(answers) - set(published)))}"
                                              if len(published) < len(answers) else ""))


@check("tier1", "push", "New dataset versions are pushed to the EUCAIM catalogue",
       "Set EUCAIM_CATALOGUE_PUSH_URL (and EUCAIM_CATALOGUE_PUSH_TOKEN_FILE) to the catalogue EUCAIM gives you.")
def push(c: Checker) -> Check:
    target = c.probe.push_configured()
    if target is None:
        return _result("push", Status.WARN, "no remote catalogue configured (EUCAIM_CATALOGUE_PUSH_URL unset): "
                                            "versions are published locally only")
    states = c.probe.deliveries()
    failing = [s for s in states if s.status in ("pending", "invalid") and (s.last_error or s.status == "invalid")]
    if failing:
        return _result("push", Status.FAIL, f"to {target}: " + "; ".join(
            f"{s.collection_id} v{s.version} {s.status} after {s.attempts} attempt(s) ({s.last_error or 'SHACL-invalid'})"
            for s in failing), f"Make {target} reachable and accept the node's token; versions are retried until then.")
    delivered = [s for s in states if s.status == "delivered"]
    return _result("push", Status.PASS if delivered else Status.WARN,
                   f"to {target}: {len(delivered)} of {len(states)} newest version(s) delivered",
                   "Wait for the outbox to deliver (it retries) and check catalogue-sync's log.")


# -- Tier 2 ------------------------------------------------------------------------------------------------------

@check("tier2", "search-auth", "The federated search is on and authenticated",
       "Give catalogue-sync a token file (EUCAIM_SEARCH_TOKEN_FILE) and share its token with EUCAIM's Focus "
       "(AUTH_HEADER 'Secret <token>').")
def search_auth(c: Checker) -> Check:
    token = c._once("token", c.probe.search_token)
    if not token:
        return _result("search_auth", Status.FAIL, "search token missing: the token file is absent or empty, so no "
                                                   "client (and not this check) can authenticate")
    body = {"ast": {"operand": "OR", "children": []}, "id": "readiness"}
    # The node's token first: the anonymous attempt spends one of the address's failed logins (decision 0072).
    right = c.probe.search(body, token)
    if right.status == 404:
        return _result("search_auth", Status.FAIL, "the search endpoint answers 404: search not enabled")
    if right.status == 429:
        return _rate_limited("search_auth", right)
    anonymous = c.probe.search(body, None)
    problems = [] if right.status == 200 else [f"the node's own token answered HTTP {right.status}"]
    if anonymous.status not in (401, 429):  # 429: refused before the token is even looked at
        problems.append(f"a request without a token answered HTTP {anonymous.status}")
    if problems:
        return _result("search_auth", Status.FAIL, "; ".join(problems))
    return _result("search_auth", Status.PASS, f"the node's token: 200; no token: {anonymous.status}")


def _rate_limited(fn_name: str, answer: Any) -> Check:
    return _result(fn_name, Status.WARN, f"not evaluated: the node refused this address with 429 (too many failed "
                                         f"logins or requests from it), retry after {answer.retry_after or '?'} s",
                   f"Run the readiness check again in {answer.retry_after or 'a few'} seconds.")


@check("tier2", "search-examples", "The search answers every EUCAIM reference request",
       "Look at catalogue-sync's log for the refused request; docs/federation.md lists the keys understood.")
def search_examples(c: Checker) -> Check:
    token = c._once("token", c.probe.search_token)
    if not token:
        return _result("search_examples", Status.FAIL, "not tried: search token missing",
                       "Fix the search token first (search-auth).")
    examples = c.probe.request_examples()
    failed, foreign = [], []
    for example in examples:
        answer = c.probe.search(example["body"], token)
        if answer.status == 429:
            return _rate_limited("search_examples", answer)
        if answer.status != 200 or not isinstance(answer.body, dict) or "collections" not in answer.body:
            (failed if example.get("eucaim", True) else foreign).append(
                f"{example['name']}: HTTP {answer.status} {str(answer.body)[:160]}")
    if failed:
        return _result("search_examples", Status.FAIL, f"{len(failed)} of {len(examples)} refused: " + "; ".join(failed + foreign))
    answered = f"{len(examples) - len(foreign)} of {len(examples)} reference requests answered"
    if foreign:
        return _result("search_examples", Status.WARN, f"{answered}; refused, with keys that are not EUCAIM's: "
                                                       + "; ".join(foreign),
                       "Nothing for EUCAIM's explorer, which never sends these keys; the reference node (CHAIMELEON "
                       "dataset-service) answers an unknown key as a condition no study meets.")
    return _result("search_examples", Status.PASS, f"{answered} ({', '.join(e['name'] for e in examples)})")


#: Below this minimum count a cell is small enough to single out people (EUCAIM's default is 10).
RECOMMENDED_MIN_COUNT = 10


@check("tier2", "small-cells", "Small-cell protection is on",
       f"Set EUCAIM_SEARCH_MIN_COUNT to at least {RECOMMENDED_MIN_COUNT}.", needs_store=False)
def small_cells(c: Checker) -> Check:
    mode, min_count = c.probe.search_protection()
    evidence = f"protection {mode!r}, minimum count {min_count}"
    if min_count <= 1:
        return _result("small_cells", Status.FAIL, evidence + ": every count is answered, however small")
    if min_count < RECOMMENDED_MIN_COUNT:
        return _result("small_cells", Status.WARN, evidence + f": below the recommended {RECOMMENDED_MIN_COUNT}")
    return _result("small_cells", Status.PASS, evidence)


def _coverage(quality: dict[str, Any]) -> dict[str, float]:
    n = quality.get("series_checked") or 0
    return {tag: (quality.get("tag_present", {}).get(tag, 0) / n) for tag in MINIMUM_TAGS} if n else {}


@check("tier2", "minimum-tags", "EUCAIM's minimum attributes are present, per collection",
       "Find the series lacking them (catalogue_series.quality.missing_tags) and complete them at the source.")
def minimum_tags(c: Checker) -> Check:
    qualities = c._once("quality", c.probe.collection_quality)
    lines, short = [], []
    for cid, quality in sorted(qualities.items()):
        coverage = _coverage(quality)
        if not coverage:
            continue
        low = {tag: v for tag, v in coverage.items() if v < 1}
        short += [cid] if low else []
        lines.append(f"{cid}: " + (", ".join(f"{t} {v:.0%}" for t, v in low.items()) if low else "all 100%"))
    if not lines:
        return _result("minimum_tags", Status.WARN, "no checked image series yet", "Send studies; quality is computed "
                                                                                 "when a study is indexed.")
    return _result("minimum_tags", Status.WARN if short else Status.PASS,
                   f"{', '.join(MINIMUM_TAGS)} per collection: " + "; ".join(lines))


# -- Tier 3 ------------------------------------------------------------------------------------------------------

@check("tier3", "datasets-verify", "Tier 3 datasets verify", "Run `eucaim-node dataset verify` and fix what it reports.")
def datasets_verify(c: Checker) -> Check:
    outcome = c.probe.datasets_verify()
    if outcome is None:
        return _result("datasets_verify", Status.WARN, "not available: this node has no dataset verification "
                                                       "(`eucaim-node dataset verify`) yet",
                       "Nothing to do for Tiers 1–2; Tier 3 needs a release with dataset verification.")
    if not outcome.ok:
        return _result("datasets_verify", Status.FAIL, outcome.summary + "".join(f"; {f}" for f in outcome.failures[:5]))
    if not outcome.datasets:
        return _result("datasets_verify", Status.WARN, outcome.summary + ": no Tier 3 dataset to verify yet",
                       "Define and materialise a dataset (`eucaim-node dataset create`, docs/datasets.md) to offer Tier 3.")
    return _result("datasets_verify", Status.PASS, outcome.summary)


# -- de-identification -------------------------------------------------------------------------------------------

@check("deid", "deid-profile", "De-identification profile and options load",
       "Fix EUCAIM_DEID_PROFILE / EUCAIM_DEID_OPTIONS of the anonymisation service (docs/deid.md).", needs_store=False)
def deid_profile(c: Checker) -> Check:
    settings = c._once("deid", c.probe.deid_settings)
    if settings.error:
        return _result("deid_profile", Status.FAIL, f"profile {settings.profile!r}: {settings.error}")
    return _result("deid_profile", Status.PASS, f"profile {settings.profile!r}, options "
                                                f"{', '.join(settings.options) or 'those of the profile'} (DICOM PS3.15 Annex E)")


@check("deid", "deid-guard", "The PHI guard blocks output that still holds input identifiers",
       "Do not switch phi_guard off in the profile.", needs_store=False)
def deid_guard(c: Checker) -> Check:
    settings = c._once("deid", c.probe.deid_settings)
    if settings.error:
        return _result("deid_guard", Status.FAIL, "unknown: the profile does not load")
    if not settings.phi_guard:
        return _result("deid_guard", Status.FAIL, f"profile {settings.profile!r} has phi_guard off")
    return _result("deid_guard", Status.PASS, "phi_guard on")


@check("deid", "quarantine", "Quarantined instances have been reviewed",
       "Review the quarantined instances (MongoDB anonymisation_quarantine, reasons per instance; docs/deid.md) "
       "before onboarding: each is an image the node refused to release.")
def quarantine(c: Checker) -> Check:
    total, unreviewed = c.probe.quarantine()
    if unreviewed:
        return _result("quarantine", Status.WARN, f"{unreviewed} of {total} quarantined instance(s) not reviewed")
    return _result("quarantine", Status.PASS, f"{total} quarantined instance(s), none awaiting review")


# -- security ----------------------------------------------------------------------------------------------------

@check("security", "transport", "Transport encryption and authentication are on",
       "Run the node in its default, secure posture (no insecure settings; docs/security.md).", needs_store=False)
def transport(c: Checker) -> Check:
    t = c.probe.transport()
    problems = []
    if t.kafka_security_protocol.upper() != "SASL_SSL":
        problems.append(f"Kafka {t.kafka_security_protocol} (not SASL_SSL)")
    if not t.mongo_tls:
        problems.append("MongoDB without TLS")
    if not t.orthanc_auth:
        problems.append("an Orthanc answers without credentials")
    evidence = (f"Kafka {t.kafka_security_protocol}, MongoDB TLS {'on' if t.mongo_tls else 'off'}, "
                f"Orthanc REST {'authenticated' if t.orthanc_auth else 'OPEN'}, search {t.search_url}")
    if problems:
        return _result("transport", Status.FAIL, evidence + ": " + "; ".join(problems))
    if t.search_url.startswith("http://") and not any(h in t.search_url for h in ("127.0.0.1", "localhost", "[::1]")):
        return _result("transport", Status.WARN, evidence + ": the federation API is plain HTTP off this host",
                       "Serve the federation API behind TLS (the Helm chart's ingress does).")
    return _result("transport", Status.PASS, evidence)


@check("security", "ledger", "The audit ledger verifies against its witness",
       "Run `eucaim-node audit verify` and follow docs/audit.md for what it reports.")
def ledger(c: Checker) -> Check:
    outcome = c.probe.ledger()
    if not outcome.ok:
        return _result("ledger", Status.FAIL, f"NOT verified: {outcome.finding}")
    if outcome.witnessed_size is None:
        return _result("ledger", Status.WARN, f"{outcome.records} records and {outcome.heads_verified} signed heads "
                                              f"verify, but not against the witness: {outcome.finding}",
                       "Wait for the audit service to have a head cosigned (it submits every round); if the witness "
                       "lost its state, see `eucaim-node audit witness-reanchor` (docs/audit.md).")
    return _result("ledger", Status.PASS, f"{outcome.records} records, {outcome.heads_verified} signed heads, consistent "
                                          f"with the witness's cosigned head of size {outcome.witnessed_size}")


# -- data quality ------------------------------------------------------------------------------------------------

@check("quality", "data-quality", "Series have no missing or duplicated slices, irregular spacing, mixed "
       "orientation or undecodable pixels", "Look at the flagged series (catalogue_series.quality.flags) and resend "
       "complete series from the source.")
def data_quality(c: Checker) -> Check:
    qualities = c._once("quality", c.probe.collection_quality)
    lines, flagged = [], False
    for cid, quality in sorted(qualities.items()):
        n = quality.get("series_checked") or 0
        if not n:
            continue
        counts = {f: k for f, k in (quality.get("flagged") or {}).items() if k and f in FLAGS and f != "missing_minimum_tags"}
        flagged = flagged or bool(counts)
        lines.append(f"{cid}: {n} series" + (", " + ", ".join(f"{k} {f.replace('_', ' ')}" for f, k in counts.items())
                                             if counts else ", none flagged"))
    if not lines:
        return _result("data_quality", Status.WARN, "no checked image series yet",
                       "Send studies; quality is computed when a study is indexed.")
    return _result("data_quality", Status.WARN if flagged else Status.PASS, "; ".join(lines))


def assess(probe: NodeProbe, now: datetime | None = None) -> Report:
    """Every check against ``probe``, in a fixed order (store, Tier 1, 2, 3, de-identification, security, quality)."""
    return Checker(probe).run(now)


def by_area(checks: Iterable[Check]) -> dict[str, list[Check]]:
    grouped: dict[str, list[Check]] = {area: [] for area in AREAS}
    for c in checks:
        grouped[c.area].append(c)
    return {area: items for area, items in grouped.items() if items}
