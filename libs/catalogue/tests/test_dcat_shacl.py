"""HealthDCAT-AP rendering and its SHACL conformance (R8 NON_PUBLIC + DCAT-AP 3.0.0, offline)."""

import hashlib
from datetime import UTC, datetime

import pytest
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, RDF, SKOS

from eucaim_node.catalogue import config as dcat_config
from eucaim_node.catalogue import dcat
from eucaim_node.catalogue.config import bundled_config_path, load_config
from eucaim_node.catalogue.quality import METRICS, measures
from eucaim_node.catalogue.shacl import SH, adapt_pathless_or, load_shapes, shapes_dir, validate

CONFIG = load_config(bundled_config_path("collections.example.yaml"))
FACTS = dcat.CollectionFacts(
    studies=120, subjects=100, min_typical_age=50, max_typical_age=80,
    sexes=(dcat.CodedFacet("SNOMEDCT248152002", "Female"), dcat.CodedFacet("SNOMEDCT248153007", "Male")),
    modalities=(dcat.CodedFacet("RID10321", "Computed Tomography"),),
    body_parts=(dcat.CodedFacet("SNOMEDCT43799004", "Chest"),),
    manufacturers=(dcat.CodedFacet("birnlex_3066", "Siemens Medical Solutions"),),
    quality=measures({"series_checked": 4, "flagged": {"missing_slices": 1, "mixed_orientation": 1},
                      "tag_present": {"PatientID": 4, "Modality": 4, "BodyPartExamined": 3, "Manufacturer": 4}}))
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def catalogue_graph(config=CONFIG, collections=("lung-screening", "breast-screening", "default")) -> Graph:
    graph = dcat.new_graph()
    datasets = [dcat.add_dataset(graph, config, config.resolved(c), FACTS, dcat.VersionInfo(2, NOW, NOW, "n", 1))
                for c in collections]
    dcat.add_catalog(graph, config, datasets, NOW)
    return graph


def test_the_catalogue_conforms_with_zero_violations():
    report = validate(catalogue_graph())
    assert report.conforms, [f"{v.focus} {v.path} {v.message}" for v in report.violations]
    assert report.violations == ()


def test_screening_context_is_published_as_collection_method_and_condition_with_zero_violations():
    """eucaim:collectionMethod from the studies' programmes; eucaim:hasCondition from their cancer type when the
    collection fixes none (only if they share one: the property is 1..1)."""
    import dataclasses

    eucaim = "https://cancerimage.eu/ontology/EUCAIM#"
    screening = dataclasses.replace(FACTS, collection_methods=(
        dcat.CodedFacet("diagnostic", "Diagnostic or follow-up imaging"),
        dcat.CodedFacet("organised-screening", "Organised screening programme")),
        conditions=(dcat.CodedFacet("SNOMEDCT254837009", "Breast cancer"),))
    graph = dcat.new_graph()
    default = dcat.add_dataset(graph, CONFIG, CONFIG.resolved("default"), screening, dcat.VersionInfo(1, NOW, NOW, "n"))
    lung = dcat.add_dataset(graph, CONFIG, CONFIG.resolved("lung-screening"), screening, dcat.VersionInfo(1, NOW, NOW, "n"))
    mixed = dataclasses.replace(screening, conditions=screening.conditions + (dcat.CodedFacet("SNOMEDCT363358000", "Lung cancer"),))
    other = dcat.new_graph()
    mixed_ds = dcat.add_dataset(other, CONFIG, CONFIG.resolved("default"), mixed, dcat.VersionInfo(1, NOW, NOW, "n"))
    dcat.add_catalog(graph, CONFIG, [default, lung], NOW)
    report = validate(graph)
    assert report.conforms and report.violations == ()
    methods = {str(graph.value(m, SKOS.prefLabel)) for m in graph.objects(default, URIRef(eucaim + "collectionMethod"))}
    assert methods == {"Diagnostic or follow-up imaging", "Organised screening programme"}
    assert str(graph.value(graph.value(default, URIRef(eucaim + "hasCondition")), SKOS.notation)) == "SNOMEDCT254837009"
    assert str(graph.value(graph.value(lung, URIRef(eucaim + "hasCondition")), SKOS.notation)) == "SNOMEDCT363358000"
    assert other.value(mixed_ds, URIRef(eucaim + "hasCondition")) is None


def test_a_collection_whose_counts_are_small_cells_conforms_without_them():
    """Counts below the minimum are left out (decision 0071): the counts are recommended, not mandatory."""
    import dataclasses

    graph = dcat.new_graph()
    small = dataclasses.replace(FACTS, studies=None, subjects=None)
    ds = dcat.add_dataset(graph, CONFIG, CONFIG.resolved("lung-screening"), small, dcat.VersionInfo(1, NOW, NOW, "n"))
    dcat.add_catalog(graph, CONFIG, [ds], NOW)
    report = validate(graph)
    assert report.conforms and report.violations == ()
    health = "http://healthdataportal.eu/ns/health#"
    assert graph.value(ds, URIRef(health + "numberOfRecords")) is None
    assert graph.value(ds, URIRef(health + "numberOfUniqueIndividuals")) is None


def test_the_bundled_default_collections_file_conforms_too():
    config = load_config(None)
    assert validate(catalogue_graph(config, ("default",))).conforms


@pytest.mark.parametrize(("mutilate", "expected"), [
    (lambda g, ds: g.remove((ds, URIRef("http://healthdataportal.eu/ns/health#hdab"), None)), "hdab"),
    (lambda g, ds: g.remove((ds, DCAT.distribution, None)), "distribution"),
    (lambda g, ds: g.remove((ds, DCAT.keyword, None)), "keyword"),
    (lambda g, ds: g.set((ds, URIRef("http://purl.org/dc/terms/accessRights"),
                          URIRef("http://publications.europa.eu/resource/authority/access-right/PUBLIC"))), "accessRights"),
])
def test_the_check_fails_when_a_mandatory_property_is_missing(mutilate, expected):
    graph = catalogue_graph(collections=("lung-screening",))
    dataset = next(graph.subjects(RDF.type, DCAT.Dataset))
    mutilate(graph, dataset)
    report = validate(graph)
    assert not report.conforms and any(expected in (v.path or "") + v.message for v in report.violations)


def test_untyped_vocabulary_concepts_are_violations():
    """Why the output describes its concepts: the reference example, which does not, fails the class checks."""
    graph = catalogue_graph(collections=("lung-screening",))
    concept = URIRef("http://publications.europa.eu/resource/authority/data-theme/HEAL")
    graph.remove((concept, None, None))
    assert not validate(graph).conforms


def test_the_one_pathless_sh_or_is_adapted_in_memory_and_the_files_are_unchanged():
    shapes = Graph()
    shapes.parse(shapes_dir() / "healthdcat-ap-r8" / "non-public-shapes.ttl", format="turtle")
    assert adapt_pathless_or(shapes) == 1
    assert adapt_pathless_or(shapes) == 0
    assert any(shapes.objects(None, SH["or"]))
    loaded = load_shapes()
    for _owner, prop in loaded.subject_objects(SH.property):
        assert (prop, SH.path, None) in loaded or (prop, SH["or"], None) not in loaded
    sums = dict(line.split()[::-1] for line in (shapes_dir() / "SHA256SUMS").read_text().splitlines())
    for name, digest in sums.items():
        assert hashlib.sha256((shapes_dir() / name).read_bytes()).hexdigest() == digest, name


def test_structured_data_true_without_variables_is_caught_by_the_adapted_constraint():
    graph = catalogue_graph(collections=("lung-screening",))
    dataset = next(graph.subjects(RDF.type, DCAT.Dataset))
    from rdflib import Literal

    graph.set((dataset, URIRef("http://healthdataportal.eu/ns/health#hasStructuredData"), Literal(True)))
    report = validate(graph)
    assert any("hasVariables" in v.message for v in report.violations)


def test_versions_share_the_content_hash_until_the_content_changes():
    lung = CONFIG.resolved("lung-screening")
    first = dcat.content_hash(CONFIG, lung, FACTS)
    assert first == dcat.content_hash(CONFIG, lung, FACTS)
    assert first != dcat.content_hash(CONFIG, lung, dcat.CollectionFacts(studies=130, subjects=100))


def test_turtle_and_json_ld_carry_the_same_graph():
    graph = catalogue_graph(collections=("lung-screening",))
    ttl = Graph().parse(data=dcat.serialise(graph, "ttl"), format="turtle")
    jsonld = Graph().parse(data=dcat.serialise(graph, "jsonld"), format="json-ld")
    assert len(ttl) == len(jsonld) == len(graph)
    version = next(ttl.objects(None, URIRef("http://www.w3.org/ns/dcat#version")))
    assert str(version) == "1.1.0"


def test_a_configured_interoperability_level_is_published_as_a_described_concept_and_still_conforms():
    level = {"iri": "https://example.org/eucaim-tiers/tier-1", "label": "EUCAIM Tier 1"}
    config = CONFIG.model_copy(update={"defaults": CONFIG.defaults.model_copy(
        update={"interoperability_level": dcat_config.ConceptRef(**level)})})
    graph = catalogue_graph(config, ("lung-screening",))
    dataset = next(graph.subjects(RDF.type, DCAT.Dataset))
    [node] = graph.objects(dataset, dcat.EUCAIM.interoperabilityLevel)
    assert str(node) == level["iri"] and (node, RDF.type, SKOS.Concept) in graph
    assert validate(graph).conforms


def test_an_unconfigured_interoperability_level_is_not_guessed():
    graph = catalogue_graph(collections=("lung-screening",))
    assert list(graph.objects(None, dcat.EUCAIM.interoperabilityLevel)) == []


def test_data_quality_is_published_as_dqv_measurements_of_the_dataset():
    graph = catalogue_graph(collections=("lung-screening",))
    dataset = next(graph.subjects(RDF.type, DCAT.Dataset))
    values = {}
    for node in graph.objects(dataset, dcat.DQV.hasQualityMeasurement):
        assert (node, RDF.type, dcat.DQV.QualityMeasurement) in graph
        assert graph.value(node, dcat.DQV.computedOn) == dataset
        metric = graph.value(node, dcat.DQV.isMeasurementOf)
        assert (metric, RDF.type, dcat.DQV.Metric) in graph and graph.value(metric, SKOS.definition) is not None
        assert (graph.value(metric, dcat.DQV.inDimension), RDF.type, dcat.DQV.Dimension) in graph
        values[str(metric).removeprefix(dcat.QUALITY_METRIC)] = graph.value(node, dcat.DQV.value).toPython()
    assert set(values) == set(METRICS)
    assert values["series-without-missing-slices"] == 0.75 and values["series-with-consistent-orientation"] == 0.75
    assert values["minimum-tag-BodyPartExamined"] == 0.75 and values["minimum-tag-AcquisitionDate"] == 0.0
    assert validate(graph).violations == ()
