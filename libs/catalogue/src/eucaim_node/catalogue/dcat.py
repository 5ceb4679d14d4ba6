"""Collections as HealthDCAT-AP (Release 8, NON_PUBLIC) / EUCAIM DCAT-AP v2 datasets, with rdflib.

A dataset's description is built in two layers: the *content* (what the collection is and what
it holds: titles, agents, coded facets, counts) and the *version* (``dcat:version``,
``dct:modified``, ``adms:versionNotes``, ``dcat:previousVersion``). A new version is published
only when the content changes (see :func:`content_hash`).

Controlled-vocabulary values are described in the output itself (typed ``skos:Concept`` with a
label and ``skos:inScheme``), so the HealthDCAT-AP class and vocabulary shapes can check them
without the hosted validator's preloaded vocabularies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, PROV, RDF, RDFS, SKOS, XSD

from .config import Agent, CollectionsConfig, Contact, ResolvedCollection
from .quality import DIMENSIONS, METRICS, Measure

HEALTHDCATAP = Namespace("http://healthdataportal.eu/ns/health#")  # the namespace the R8 shapes validate
DCATAP = Namespace("http://data.europa.eu/r5r/")
CV = Namespace("http://data.europa.eu/m8g/")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
DPV = Namespace("https://w3id.org/dpv#")
DPVPD = Namespace("https://w3id.org/dpv/dpv-pd#")
ELI = Namespace("http://data.europa.eu/eli/ontology#")
DCAT3 = Namespace("http://www.w3.org/ns/dcat#")  # rdflib's DCAT lacks the DCAT 3 versioning terms
EUCAIM = Namespace("https://cancerimage.eu/ontology/EUCAIM#")
DQV = Namespace("http://www.w3.org/ns/dqv#")
#: The node's own data-quality metrics and dimensions (W3C DQV §6: a metric is any documented measure).
QUALITY_METRIC = "urn:eucaim-node:dqv:metric:"
QUALITY_DIMENSION = "urn:eucaim-node:dqv:dimension:"

EU = "http://publications.europa.eu/resource/authority/"
HDEU = "https://hdeu-dcat.data.health.europa.eu/resource/authority/"
SNOMED = "http://snomed.info/id/"
RADLEX = "http://radlex.org/RID/"
BIRNLEX = "http://uri.neuinfo.org/nif/nifstd/"

ACCESS_RIGHTS_LABEL = {"NON_PUBLIC": "Non-public", "RESTRICTED": "Restricted", "PUBLIC": "Public"}
HEALTH_CATEGORY_LABEL = {
    "EHRS": "Electronic health data from electronic health records",
    "EMRD": "Other health data from medical devices",
    "EHCT": "Data from clinical trials, clinical studies and clinical investigations",
    "RQSH": "Data from research cohorts, questionnaires and surveys",
    "MRMR": "Data from medical registries and mortality registries",
}
SCHEME_TITLES = {
    "http://snomed.info/sct": "SNOMED CT",
    "http://radlex.org": "RadLex",
    "http://uri.neuinfo.org/nif/nifstd/birnlex": "BIRNLex",
    f"{HDEU}healthcategories": "EHDS health categories (Art. 51)",
    f"{HDEU}publisher-type": "Publisher type",
    f"{HDEU}coding-system": "Coding system",
    f"{HDEU}standard": "Standard",
    f"{EU}access-right": "Access right",
    f"{EU}data-theme": "Data theme",
    f"{EU}language": "Language",
    f"{EU}country": "Country",
    f"{EU}dataset-type": "Dataset type",
}
LANGUAGE_LABEL = {"ENG": "English", "FRA": "French", "DEU": "German", "SPA": "Spanish", "ITA": "Italian", "NLD": "Dutch"}


@dataclass(frozen=True)
class CodedFacet:
    code: str  # federation token: SNOMEDCT…, RID…, birnlex_…
    label: str


@dataclass(frozen=True)
class CollectionFacts:
    """What the catalogue knows about a collection (published counts are already coarsened)."""

    studies: int | None  # None: fewer than the minimum count, not published
    subjects: int | None
    min_typical_age: int | None = None
    max_typical_age: int | None = None
    sexes: tuple[CodedFacet, ...] = ()
    modalities: tuple[CodedFacet, ...] = ()
    body_parts: tuple[CodedFacet, ...] = ()
    manufacturers: tuple[CodedFacet, ...] = ()
    quality: tuple[Measure, ...] = ()  # data-quality measurements (catalogue.quality), published as W3C DQV
    #: Screening programmes of the studies (catalogue/screening.py programme tokens), held by enough subjects.
    collection_methods: tuple[CodedFacet, ...] = ()
    #: Cancer types of the studies as the explorer's diagnosis codes; published when the collection fixes none.
    conditions: tuple[CodedFacet, ...] = ()


@dataclass(frozen=True)
class VersionInfo:
    number: int
    modified: datetime
    issued: datetime
    notes: str
    previous: int | None = None

    @property
    def label(self) -> str:
        return f"1.{self.number - 1}.0"  # SemVer: the first publication is 1.0.0


@dataclass
class _Builder:
    graph: Graph
    described: set[URIRef] = field(default_factory=set)

    def scheme(self, iri: str) -> URIRef:
        node = URIRef(iri)
        if node not in self.described:
            self.described.add(node)
            self.graph.add((node, RDF.type, SKOS.ConceptScheme))
            title = SCHEME_TITLES.get(iri) or iri.rstrip("/").rsplit("/", 1)[-1].replace("-", " ").capitalize()
            self.graph.add((node, DCTERMS.title, Literal(title, lang="en")))
        return node

    def concept(self, iri: str, label: str, scheme: str | None, notation: str | None = None) -> URIRef:
        node = URIRef(iri)
        if node not in self.described:
            self.described.add(node)
            self.graph.add((node, RDF.type, SKOS.Concept))
            self.graph.add((node, SKOS.prefLabel, Literal(label, lang="en")))
            if scheme:
                self.graph.add((node, SKOS.inScheme, self.scheme(scheme)))
            if notation:
                self.graph.add((node, SKOS.notation, Literal(notation)))
        return node


def dataset_iri(config: CollectionsConfig, collection_id: str) -> str:
    return f"{config.catalogue.base_uri.rstrip('/')}/catalogue/datasets/{collection_id}"


def catalog_iri(config: CollectionsConfig) -> str:
    return f"{config.catalogue.base_uri.rstrip('/')}/catalogue"


def new_graph() -> Graph:
    graph = Graph()
    for prefix, ns in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("skos", SKOS), ("vcard", VCARD), ("adms", ADMS),
                       ("healthdcatap", HEALTHDCATAP), ("dcatap", DCATAP), ("cv", CV), ("dpv", DPV), ("dpvpd", DPVPD),
                       ("eli", ELI), ("eucaim", EUCAIM), ("xsd", XSD), ("rdfs", RDFS), ("dqv", DQV)):
        graph.bind(prefix, ns)
    return graph


def _concept_iri(code: str) -> tuple[str, str | None]:
    """IRI and scheme of a federation token."""
    if code.startswith("SNOMEDCT"):
        return SNOMED + code.removeprefix("SNOMEDCT"), "http://snomed.info/sct"
    if code.startswith("RID"):
        return RADLEX + code, "http://radlex.org"
    if code.startswith("birnlex_"):
        return BIRNLEX + code, "http://uri.neuinfo.org/nif/nifstd/birnlex"
    return f"urn:eucaim-node:code:{code}", None


def _agent(b: _Builder, agent: Agent, iri: str) -> URIRef:
    g = b.graph
    node = URIRef(iri)
    g.add((node, RDF.type, FOAF.Agent))
    g.add((node, FOAF.name, Literal(agent.name, lang="en")))
    point = URIRef(iri + "/contact-point")
    g.add((node, CV.contactPoint, point))
    g.add((point, RDF.type, CV.ContactPoint))
    g.add((point, CV.email, Literal(agent.email)))
    if agent.url:
        g.add((point, CV.contactPage, URIRef(agent.url)))
        g.add((node, FOAF.homepage, URIRef(agent.url)))
        g.add((URIRef(agent.url), RDF.type, FOAF.Document))
    if agent.type:
        concept = b.concept(f"{HDEU}publisher-type/{agent.type}", agent.type.replace("-", " "), f"{HDEU}publisher-type")
        g.add((node, DCTERMS.type, concept))
    return node


def _contact(b: _Builder, contact: Contact, iri: str) -> URIRef:
    g = b.graph
    node = URIRef(iri)
    g.add((node, RDF.type, VCARD.Kind))
    g.add((node, VCARD.fn, Literal(contact.name)))
    if contact.email:
        g.add((node, VCARD.hasEmail, URIRef(f"mailto:{contact.email}")))
    if contact.url:
        g.add((node, VCARD.hasURL, URIRef(contact.url)))
    return node


def _legislation(b: _Builder, subject: URIRef, iris: tuple[str, ...]) -> None:
    for iri in iris:
        b.graph.add((subject, DCATAP.applicableLegislation, URIRef(iri)))
        b.graph.add((URIRef(iri), RDF.type, ELI.LegalResource))


def _metric(b: _Builder, name: str) -> URIRef:
    """A DQV metric, described once per graph with its dimension (W3C DQV §6.5, §6.6)."""
    g = b.graph
    node = URIRef(QUALITY_METRIC + name)
    if node not in b.described:
        b.described.add(node)
        metric = METRICS[name]
        dimension = URIRef(QUALITY_DIMENSION + metric.dimension)
        g.add((node, RDF.type, DQV.Metric))
        g.add((node, SKOS.prefLabel, Literal(metric.label, lang="en")))
        g.add((node, SKOS.definition, Literal(metric.definition, lang="en")))
        g.add((node, DQV.expectedDataType, XSD.double))
        g.add((node, DQV.inDimension, dimension))
        if dimension not in b.described:
            b.described.add(dimension)
            g.add((dimension, RDF.type, DQV.Dimension))
            g.add((dimension, SKOS.prefLabel, Literal(metric.dimension.capitalize(), lang="en")))
            g.add((dimension, SKOS.definition, Literal(DIMENSIONS[metric.dimension], lang="en")))
    return node


def _quality(b: _Builder, ds: URIRef, iri: str, quality: tuple[Measure, ...]) -> None:
    """One ``dqv:QualityMeasurement`` per measure, computed on the dataset (W3C DQV §6.4)."""
    g = b.graph
    for measure in quality:
        node = URIRef(f"{iri}/quality/{measure.metric}")
        g.add((ds, DQV.hasQualityMeasurement, node))
        g.add((node, RDF.type, DQV.QualityMeasurement))
        g.add((node, DQV.isMeasurementOf, _metric(b, measure.metric)))
        g.add((node, DQV.computedOn, ds))
        g.add((node, DQV.value, Literal(measure.value, datatype=XSD.double)))


class MissingMetadata(ValueError):
    """A collection lacks what a NON_PUBLIC HealthDCAT-AP dataset must have; names the fields."""


def add_dataset(graph: Graph, config: CollectionsConfig, collection: ResolvedCollection, facts: CollectionFacts,
                version: VersionInfo | None = None) -> URIRef:
    """Add one collection's dataset description to ``graph``; return the dataset node."""
    missing = [name for name in ("publisher", "hdab", "contact_point", "access_rights", "applicable_legislation",
                                 "keywords", "provenance", "health_categories") if not getattr(collection, name)]
    if missing:
        raise MissingMetadata(f"collection {collection.id!r} lacks {', '.join(missing)} (set them in the collection "
                              f"or in 'defaults' of the collections file)")
    b = _Builder(graph)
    g = graph
    iri = dataset_iri(config, collection.id)
    ds = URIRef(iri)
    g.add((ds, RDF.type, DCAT.Dataset))
    g.add((ds, DCTERMS.identifier, Literal(iri)))
    g.add((ds, DCTERMS.title, Literal(collection.title, lang="en")))
    g.add((ds, DCTERMS.description, Literal(collection.description, lang="en")))
    rights = collection.access_rights
    g.add((ds, DCTERMS.accessRights, b.concept(f"{EU}access-right/{rights}", ACCESS_RIGHTS_LABEL[rights], f"{EU}access-right")))
    g.add((URIRef(f"{EU}access-right/{rights}"), RDF.type, DCTERMS.RightsStatement))
    _legislation(b, ds, collection.applicable_legislation)
    g.add((ds, DCAT.theme, b.concept(f"{EU}data-theme/HEAL", "Health", f"{EU}data-theme")))
    for category in collection.health_categories:
        g.add((ds, HEALTHDCATAP.healthCategory,
               b.concept(f"{HDEU}healthcategories/{category}", HEALTH_CATEGORY_LABEL.get(category, category), f"{HDEU}healthcategories")))
    g.add((ds, DCTERMS.type, b.concept(str(DPV.PseudonymisedData), "Pseudonymised data", str(DPV))))
    standard = b.concept(f"{HDEU}standard/DICOM", "DICOM", f"{HDEU}standard")
    g.add((ds, DCTERMS.conformsTo, standard))
    coding = b.concept(f"{HDEU}coding-system/SNOMED-CT", "SNOMED CT", f"{HDEU}coding-system")
    g.add((ds, HEALTHDCATAP.hasCodingSystem, coding))
    for node in (standard, coding):
        g.add((node, RDF.type, DCTERMS.Standard))
    for keyword in collection.keywords:
        g.add((ds, DCAT.keyword, Literal(keyword, lang="en")))
    if collection.language:
        lang = b.concept(f"{EU}language/{collection.language}", LANGUAGE_LABEL.get(collection.language, collection.language),
                         f"{EU}language")
        g.add((ds, DCTERMS.language, lang))
        g.add((lang, RDF.type, DCTERMS.LinguisticSystem))
    if collection.country:
        country = b.concept(f"{EU}country/{collection.country}", collection.country, f"{EU}country")
        g.add((ds, DCTERMS.spatial, country))
        g.add((country, RDF.type, DCTERMS.Location))

    g.add((ds, DCTERMS.publisher, _agent(b, collection.publisher, iri + "/publisher")))
    g.add((ds, HEALTHDCATAP.hdab, _agent(b, collection.hdab, iri + "/hdab")))
    g.add((ds, DCAT.contactPoint, _contact(b, collection.contact_point, iri + "/contact-point")))

    provenance = URIRef(iri + "/provenance")
    g.add((ds, DCTERMS.provenance, provenance))
    g.add((provenance, RDF.type, DCTERMS.ProvenanceStatement))
    g.add((provenance, RDFS.label, Literal(collection.provenance, lang="en")))
    if collection.legal_basis:
        basis = URIRef(iri + "/legal-basis")
        g.add((ds, DPV.hasLegalBasis, basis))
        g.add((basis, RDF.type, DPV.LegalBasis))
        g.add((basis, DCTERMS.description, Literal(collection.legal_basis, lang="en")))
    for personal in (DPVPD.Age, DPVPD.Gender):
        g.add((ds, DPV.hasPersonalData, personal))
        g.add((personal, RDF.type, DPV.PersonalData))

    distribution = URIRef(iri + "/distribution")
    g.add((ds, DCAT.distribution, distribution))
    g.add((distribution, RDF.type, DCAT.Distribution))
    g.add((distribution, DCTERMS.title, Literal("De-identified DICOM studies, on request", lang="en")))
    g.add((distribution, DCTERMS.description, Literal(
        "Access to the de-identified images is granted by the health data access body; they are processed "
        "inside the node's secure environment (EUCAIM Tier 3) or released as the permit allows.", lang="en")))
    access = collection.access_url or collection.hdab.url or catalog_iri(config)
    g.add((distribution, DCAT.accessURL, URIRef(access)))
    media = URIRef("http://www.iana.org/assignments/media-types/application/dicom")
    g.add((distribution, DCAT.mediaType, media))
    g.add((media, RDF.type, DCTERMS.MediaType))
    _legislation(b, distribution, collection.applicable_legislation)

    g.add((ds, HEALTHDCATAP.hasStructuredData, Literal(False)))
    # Counts are recommended, not mandatory (R8 non-public-shapes_recommended.ttl): a small cell is left out
    # rather than published as a number (decision 0071).
    if facts.studies is not None:
        g.add((ds, HEALTHDCATAP.numberOfRecords, Literal(facts.studies, datatype=XSD.nonNegativeInteger)))
    if facts.subjects is not None:
        g.add((ds, HEALTHDCATAP.numberOfUniqueIndividuals, Literal(facts.subjects, datatype=XSD.nonNegativeInteger)))
    if facts.min_typical_age is not None and facts.max_typical_age is not None:
        g.add((ds, HEALTHDCATAP.minTypicalAge, Literal(facts.min_typical_age, datatype=XSD.nonNegativeInteger)))
        g.add((ds, HEALTHDCATAP.maxTypicalAge, Literal(facts.max_typical_age, datatype=XSD.nonNegativeInteger)))

    # EUCAIM DCAT-AP v2 properties: the configured tier, then coded facets of the collection.
    if collection.interoperability_level:
        level = collection.interoperability_level
        g.add((ds, EUCAIM.interoperabilityLevel, b.concept(level.iri, level.label, None)))
    # hasCondition is 1..1 (the primary cancer condition): the collection's, else the one its studies share.
    condition = collection.condition or (CodedFacet(facts.conditions[0].code, facts.conditions[0].label)
                                         if len(facts.conditions) == 1 else None)
    if condition:
        concept_iri, scheme = _concept_iri(condition.code)
        g.add((ds, EUCAIM.hasCondition, b.concept(concept_iri, condition.label, scheme, condition.code)))
    # collectionMethod (eucaim:SPEC1000002): the screening programmes; the hyper-ontology's IRIs for them are not in
    # any source available here, so they are the node's own concepts under the catalogue's base URI (decision 0096).
    methods = f"{catalog_iri(config)}/concepts/collection-method"
    for method in facts.collection_methods:
        g.add((ds, EUCAIM.collectionMethod, b.concept(f"{methods}/{method.code}", method.label, methods, method.code)))
    for predicate, facets in ((EUCAIM.hasBirthSex, facts.sexes), (EUCAIM.hasImageModality, facts.modalities),
                              (EUCAIM.hasImageBodyPart, facts.body_parts),
                              (EUCAIM.hasEquipmentManufacturer, facts.manufacturers)):
        for facet in facets:
            concept_iri, scheme = _concept_iri(facet.code)
            g.add((ds, predicate, b.concept(concept_iri, facet.label, scheme, facet.code)))
    _quality(b, ds, iri, facts.quality)

    if version is not None:
        g.add((ds, DCAT3.version, Literal(version.label)))
        g.add((ds, DCTERMS.modified, Literal(version.modified.replace(microsecond=0), datatype=XSD.dateTime)))
        g.add((ds, DCTERMS.issued, Literal(version.issued.replace(microsecond=0), datatype=XSD.dateTime)))
        g.add((ds, ADMS.versionNotes, Literal(version.notes, lang="en")))
        if version.previous is not None:
            g.add((ds, DCAT3.previousVersion, URIRef(f"{iri}?version={version.previous}")))
    return ds


@dataclass(frozen=True)
class Tier3Dataset:
    """A released, published Tier 3 dataset version (eucaim_node.datasets), as the catalogue may describe it."""

    id: str  # the dataset ID the federation uses (GET /api/datasets/{id})
    name: str
    description: str
    version: int
    released: datetime
    published: datetime
    source_collection: str  # the collection its studies came from (the first, if several)
    studies: int | None  # coarsened like a collection's counts: None below the minimum count
    subjects: int | None
    previous_id: str | None = None


def tier3_dataset_iri(config: CollectionsConfig, dataset_id: str) -> str:
    return f"{config.catalogue.base_uri.rstrip('/')}/api/datasets/{dataset_id}"


def add_tier3_dataset(graph: Graph, config: CollectionsConfig, dataset: Tier3Dataset) -> URIRef:
    """Describe a Tier 3 dataset version with its source collection's metadata (publisher, HDAB, rights, …), its own
    identifier and title, ``dcat:version``, its counts under the same small-cell rule, and ``prov:wasDerivedFrom`` = the
    collection's dataset (DCAT 3 §15, derivation; ``dct:source`` would oblige that collection to be described in the
    same graph under the HealthDCAT-AP shapes, which a collection without a published version is not)."""
    collection = config.resolved(dataset.source_collection)
    described = collection.model_copy(update={"id": dataset.id, "title": dataset.name,
                                              "description": dataset.description or dataset.name})
    node = add_dataset(graph, config, described, CollectionFacts(studies=dataset.studies, subjects=dataset.subjects),
                       VersionInfo(number=dataset.version, modified=dataset.published, issued=dataset.released,
                                   notes=f"EUCAIM Tier 3 dataset, version {dataset.version}"))
    iri = tier3_dataset_iri(config, dataset.id)
    moved = URIRef(iri)
    for p, o in list(graph.predicate_objects(node)):
        graph.remove((node, p, o))
        graph.add((moved, p, o))
    graph.set((moved, DCTERMS.identifier, Literal(dataset.id)))
    graph.set((moved, DCAT3.version, Literal(str(dataset.version))))
    graph.add((moved, PROV.wasDerivedFrom, URIRef(dataset_iri(config, dataset.source_collection))))
    if dataset.previous_id:
        graph.add((moved, DCAT3.previousVersion, URIRef(tier3_dataset_iri(config, dataset.previous_id))))
    return moved


def add_catalog(graph: Graph, config: CollectionsConfig, datasets: list[URIRef], modified: datetime | None) -> URIRef:
    b = _Builder(graph)
    g = graph
    node = URIRef(catalog_iri(config))
    g.add((node, RDF.type, DCAT.Catalog))
    g.add((node, DCTERMS.title, Literal(config.catalogue.title, lang="en")))
    g.add((node, DCTERMS.description, Literal(config.catalogue.description, lang="en")))
    publisher = config.defaults.publisher
    if publisher is not None:
        g.add((node, DCTERMS.publisher, _agent(b, publisher, str(node) + "/publisher")))
    _legislation(b, node, config.defaults.applicable_legislation or ("http://data.europa.eu/eli/reg/2025/327/oj",))
    g.add((node, DCAT.themeTaxonomy, b.scheme(f"{EU}data-theme")))
    if config.catalogue.homepage:
        g.add((node, FOAF.homepage, URIRef(config.catalogue.homepage)))
        g.add((URIRef(config.catalogue.homepage), RDF.type, FOAF.Document))
    if modified is not None:
        g.add((node, DCTERMS.modified, Literal(modified.replace(microsecond=0), datatype=XSD.dateTime)))
    for ds in datasets:
        g.add((node, DCAT.dataset, ds))
    return node


def content_hash(config: CollectionsConfig, collection: ResolvedCollection, facts: CollectionFacts) -> str:
    """Hash of a dataset's content, independent of its version triples and of blank node labels."""
    graph = new_graph()
    add_dataset(graph, config, collection, facts, None)
    lines = sorted(f"{s.n3()} {p.n3()} {o.n3()}" for s, p, o in graph if not isinstance(s, BNode) and not isinstance(o, BNode))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


FORMATS = {"ttl": ("turtle", "text/turtle; charset=utf-8"), "jsonld": ("json-ld", "application/ld+json")}


def serialise(graph: Graph, fmt: str) -> str:
    name, _ = FORMATS[fmt]
    if fmt == "jsonld":
        return graph.serialize(format=name, indent=2, auto_compact=True)
    return graph.serialize(format=name)
