"""A published Tier 3 dataset in the HealthDCAT-AP catalogue: its own identifier, dcat:version, the small-cell rule on
its counts, prov:wasDerivedFrom = its collection, and zero SHACL violations (NON_PUBLIC shapes)."""

from __future__ import annotations

from datetime import UTC, datetime

from rdflib import Literal, URIRef
from rdflib.namespace import DCTERMS, PROV

from eucaim_node.catalogue import dcat
from eucaim_node.catalogue.config import bundled_config_path, load_config
from eucaim_node.catalogue.shacl import validate

T = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
DATASET_ID = "3d44ba8a-16df-4eca-ac5f-00155d6b30e6"


def render(config, studies, subjects):
    graph = dcat.new_graph()
    node = dcat.add_tier3_dataset(graph, config, dcat.Tier3Dataset(
        id=DATASET_ID, name="Lung CT, screening cohort", description="Frozen study list", version=2, released=T,
        published=T, source_collection=config.collections[0].id, studies=studies, subjects=subjects,
        previous_id="00000000-0000-4000-8000-000000000000"))
    dcat.add_catalog(graph, config, [node], T)
    return graph, node


def test_a_published_dataset_conforms_and_names_its_version_and_collection():
    for name in ("collections.default.yaml", "collections.example.yaml"):
        config = load_config(bundled_config_path(name))
        graph, node = render(config, 120, 40)
        report = validate(graph)
        assert report.violations == (), report.violations
        assert str(node).endswith(f"/api/datasets/{DATASET_ID}")
        assert graph.value(node, DCTERMS.identifier) == Literal(DATASET_ID)
        assert graph.value(node, dcat.DCAT3.version) == Literal("2")
        assert graph.value(node, PROV.wasDerivedFrom) == URIRef(dcat.dataset_iri(config, config.collections[0].id))
        assert graph.value(node, dcat.HEALTHDCATAP.numberOfRecords).toPython() == 120


def test_small_cells_are_left_out():
    config = load_config(bundled_config_path("collections.example.yaml"))
    graph, node = render(config, None, None)
    assert graph.value(node, dcat.HEALTHDCATAP.numberOfRecords) is None
    assert graph.value(node, dcat.HEALTHDCATAP.numberOfUniqueIndividuals) is None
    assert validate(graph).violations == ()
