"""SHACL conformance of published metadata: HealthDCAT-AP Release 8 NON_PUBLIC, offline, with pyshacl.

Shapes are data files copied verbatim into ``data/shacl/`` (sources, commits and licences in
``data/shacl/SOURCES.md``): the HealthDCAT-AP R8 graph guard, NON_PUBLIC shapes, range shapes,
controlled-vocabulary shapes and recommended shapes, plus the DCAT-AP 3.0.0 files the HealthDCAT-AP
files ``owl:import`` (``shapes.ttl``, ``range.ttl``, ``shapes_recommended.ttl``). As in the HealthData@EU
validator's configuration, DCAT-AP's own controlled-vocabulary shapes are not loaded: HealthDCAT-AP's
file replaces them (same shape names, health vocabularies). Nothing is fetched from the network: ``owl:imports`` are not followed,
because every imported file is loaded here.

One adaptation, made in memory when the shapes are loaded (the files stay byte-identical):
HealthDCAT-AP's ``:Dataset_Shape`` has an ``sh:property`` node holding an ``sh:or`` and no
``sh:path`` ("if hasStructuredData is true, hasVariables is required"), which is not valid SHACL
Core (a property shape needs exactly one ``sh:path``) and which pyshacl refuses. The node's
``sh:or`` list, severity and message are moved onto a new node shape with the same target
(``dcat:Dataset``): an equivalent node-level constraint, since each ``sh:or`` member is itself a
node shape evaluated against the dataset. :func:`load_shapes` checks that exactly one such node
was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from rdflib import BNode, Graph, Namespace, URIRef
from rdflib.namespace import RDF

SH = Namespace("http://www.w3.org/ns/shacl#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
ADAPTED_SHAPE = URIRef("urn:eucaim-node:shacl:Dataset_StructuredDataVariables_Shape")

#: Violation shapes (these decide conformance) and recommended shapes (warnings only).
SHAPE_FILES = (
    "healthdcat-ap-r8/graph-guard.ttl",
    "dcat-ap-3.0.0/shapes.ttl",
    "dcat-ap-3.0.0/range.ttl",
    "healthdcat-ap-r8/non-public-shapes.ttl",
    "healthdcat-ap-r8/range.ttl",
    "healthdcat-ap-r8/mdr-vocabularies.shape.ttl",
)
RECOMMENDED_FILES = (
    "dcat-ap-3.0.0/shapes_recommended.ttl",
    "healthdcat-ap-r8/non-public-shapes_recommended.ttl",
)


def shapes_dir() -> Path:
    return Path(str(resources.files("eucaim_node.catalogue") / "data" / "shacl"))


def adapt_pathless_or(shapes: Graph) -> int:
    """Move every ``sh:or`` of a path-less ``sh:property`` node onto its own node shape; return how many."""
    moved = 0
    for owner, prop in list(shapes.subject_objects(SH.property)):
        if (prop, SH.path, None) in shapes or (prop, SH["or"], None) not in shapes:
            continue
        target = URIRef(f"{ADAPTED_SHAPE}-{moved}") if moved else ADAPTED_SHAPE
        shapes.add((target, RDF.type, SH.NodeShape))
        for predicate in (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf):
            for value in shapes.objects(owner, predicate):
                shapes.add((target, predicate, value))
        for predicate, value in list(shapes.predicate_objects(prop)):
            shapes.add((target, predicate, value))
            shapes.remove((prop, predicate, value))
        shapes.remove((owner, SH.property, prop))
        moved += 1
    return moved


@lru_cache(maxsize=2)
def load_shapes(recommended: bool = True) -> Graph:
    shapes = Graph()
    base = shapes_dir()
    for name in SHAPE_FILES + (RECOMMENDED_FILES if recommended else ()):
        shapes.parse(base / name, format="turtle")
    moved = adapt_pathless_or(shapes)
    if moved != 1:
        raise RuntimeError(f"expected one path-less sh:or property node in the HealthDCAT-AP shapes, found {moved}")
    return shapes


@dataclass(frozen=True)
class Issue:
    severity: str  # Violation, Warning, Info
    focus: str
    path: str | None
    message: str


@dataclass(frozen=True)
class ShaclReport:
    conforms: bool
    violations: tuple[Issue, ...]
    warnings: tuple[Issue, ...]
    text: str

    def summary(self) -> str:
        return f"conforms={self.conforms} violations={len(self.violations)} warnings={len(self.warnings)}"


def validate(data: Graph) -> ShaclReport:
    """Validate ``data`` against the NON_PUBLIC shapes (no inference, no network)."""
    from pyshacl import validate as pyshacl_validate

    conforms, report, text = pyshacl_validate(data, shacl_graph=load_shapes(), inference="none", advanced=True,
                                       allow_warnings=True, do_owl_imports=False)
    issues = []
    # Top-level results only: nested sh:detail results explain a result, they are not results of their own.
    results = [r for rep in report.subjects(RDF.type, SH.ValidationReport) for r in report.objects(rep, SH.result)]
    for result in results:
        severity = str(report.value(result, SH.resultSeverity)).rsplit("#", 1)[-1]
        focus = report.value(result, SH.focusNode)
        path = report.value(result, SH.resultPath)
        message = report.value(result, SH.resultMessage)
        issues.append(Issue(severity, str(focus) if not isinstance(focus, BNode) else "_:blank",
                            str(path) if path is not None and not isinstance(path, BNode) else None, str(message or "")))
    violations = tuple(i for i in issues if i.severity == "Violation")
    warnings = tuple(i for i in issues if i.severity != "Violation")
    # pyshacl decides conformance (warnings allowed); the top-level violations must agree with it.
    if bool(conforms) != (not violations):
        raise RuntimeError(f"pyshacl conforms={conforms} but {len(violations)} top-level violations were read")
    return ShaclReport(bool(conforms), violations, warnings, text)
