"""The collections file, rule matching and the coding tables."""

from pathlib import Path

import pytest

from eucaim_node.catalogue.coding import CodingTables
from eucaim_node.catalogue.config import ConfigError, bundled_config_path, load_config
from eucaim_node.catalogue.rules import StudyFacts, assign_collection

EXAMPLE = load_config(bundled_config_path("collections.example.yaml"))


@pytest.mark.parametrize(("facts", "collection"), [
    (StudyFacts.of(["MG"], ["BREAST"]), "breast-screening"),
    (StudyFacts.of(["MG"], ["UNKNOWN"], "Screening mammography bilateral"), "breast-screening"),
    (StudyFacts.of(["CT"], ["CHEST"], "Low-dose chest CT, screening"), "lung-screening"),
    (StudyFacts.of(["CT"], ["Thorax"], "LDCT"), "default"),  # THORAX is not a body part the rule lists
    (StudyFacts.of(["CT"], ["CHEST"], "CT chest with contrast"), "default"),  # not low dose
    (StudyFacts.of(["MR", "SR"], ["PROSTATE"]), "prostate-mri"),
    (StudyFacts.of(["MR"], ["PELVIS"], "mpMRI prostate"), "prostate-mri"),
    (StudyFacts.of(["US"], ["KIDNEY"], "renal"), "default"),
])
def test_rules_pick_the_first_matching_collection(facts, collection):
    assert assign_collection(EXAMPLE, facts, "default") == collection


def test_keywords_match_whole_words_and_calling_aet_rules(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(bundled_config_path("collections.default.yaml").read_text() + """
  - id: research-ct
    title: Research scanner
    description: Studies sent by the research CT.
    rules:
      - calling_aets: [RESEARCH_CT1]
      - description_keywords: [DOSE]
""")
    config = load_config(path)
    assert assign_collection(config, StudyFacts.of(["CT"], ["HEAD"], calling_aet="research_ct1"), "default") == "research-ct"
    assert assign_collection(config, StudyFacts.of(["CT"], ["HEAD"], "low dose"), "default") == "research-ct"
    assert assign_collection(config, StudyFacts.of(["CT"], ["HEAD"], "DOSEREPORT"), "default") == "default"


def test_defaults_are_inherited_and_overridable():
    lung = EXAMPLE.resolved("lung-screening")
    assert lung.publisher.name == "Example Hospital" and lung.access_rights == "NON_PUBLIC"
    assert lung.keywords == ("lung cancer", "low-dose CT", "screening")
    assert lung.condition.code == "SNOMEDCT363358000"


@pytest.mark.parametrize(("text", "message"), [
    ("catalogue: [", "not valid YAML"),
    ("collections: []", "catalogue: Field required"),
    ("""catalogue: {base_uri: "https://x.eu", title: t, description: d}
collections:
  - {id: a, title: t, description: d, rules: [{}]}""", "a rule needs at least one criterion"),
    ("""catalogue: {base_uri: "https://x.eu", title: t, description: d}
collections:
  - {id: a, title: t, description: d}
  - {id: a, title: t, description: d}""", "collection ids must be unique: a"),
    ("""catalogue: {base_uri: "https://x.eu", title: t, description: d}
collections:
  - {id: a, title: t, description: d, condition: {code: "363358000", label: x}}""", "condition.code"),
])
def test_invalid_files_are_refused_naming_the_field(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path)


def test_a_missing_file_and_a_missing_default_collection_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read collections file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="EUCAIM_DEFAULT_COLLECTION"):
        EXAMPLE.require_default("other")


@pytest.mark.parametrize(("field", "raw", "code"), [
    ("modality", "MR", "RID10312"), ("modality", "ct", "RID10321"), ("modality", "PT", "RID10337"),
    ("modality", "NM", "RID10334"), ("modality", "SEG", "SNOMEDCT261665006"), ("modality", None, "SNOMEDCT261665006"),
    ("body_part", "BREAST", "SNOMEDCT76752008"), ("body_part", "Thorax", "SNOMEDCT43799004"),
    ("body_part", "ABDOMEN PELVIS", "SNOMEDCT818982008"), ("body_part", "ELBOW", "SNOMEDCT261665006"),
    ("sex", "M", "SNOMEDCT248153007"), ("sex", "F", "SNOMEDCT248152002"), ("sex", "O", "SNOMEDCT74964007"),
    ("sex", "", "SNOMEDCT261665006"),
    ("manufacturer", "SIEMENS", "birnlex_3066"), ("manufacturer", "GE MEDICAL SYSTEMS", "birnlex_12833"),
    ("manufacturer", "Philips Medical Systems", "birnlex_3065"), ("manufacturer", "CANON_MEC", "birnlex_3067"),
    ("manufacturer", "Agfa", "SNOMEDCT261665006"),
])
def test_coding_tables(field, raw, code):
    assert CodingTables.bundled().code(field, raw).code == code


def test_search_key_codes_of_the_reference_are_all_codable():
    """Every coded value the EUCAIM explorer offers for these keys is a code the catalogue can hold (or an alias)."""
    import json

    keys = json.loads((Path(__file__).parent / "data" / "search-keys.json").read_text())
    tables = CodingTables.bundled()
    fields = {"SNOMEDCT263495000": "sex", "RID10311": "modality", "SNOMEDCT123037004": "body_part", "C25392": "manufacturer"}
    for group in keys["groups"]:
        for key in group["keys"]:
            if key["key"] in fields:
                field = fields[key["key"]]
                for value in key["values"]:
                    assert tables.stored_code(field, value["code"]) in tables.codes(field), (field, value["code"])


EXPLORER = {"SNOMEDCT76752008": "Breast", "SNOMEDCT71854001": "Colon", "SNOMEDCT39607008": "Lung",
            "SNOMEDCT12921003": "Pelvis", "SNOMEDCT41216001": "Prostate"}


@pytest.mark.parametrize(("modality", "body_part", "description", "found"), [
    # Breast screening: MG, DBT (MG with tomosynthesis), breast MR and US.
    ("MG", "BREAST", "SCREENING MAMMOGRAPHY", {"Breast"}),
    ("MG", None, "DBT", {"Breast"}),  # BodyPartExamined missing: mammography images the breast only
    ("MG", "MAMMA", "", {"Breast"}),
    ("MR", "BREAST", "MRI BREAST BILATERAL", {"Breast"}),
    ("US", "BREAST", "", {"Breast"}),
    ("MR", "CHEST", "BREAST MRI", set()),  # coded CHEST: not claimed as lung, and not guessed as breast
    # Lung screening: (low-dose) chest CT, coded CHEST, THORAX or LUNG; whole-trunk CT.
    ("CT", "CHEST", "LOW DOSE CT SCREENING", {"Lung"}),
    ("CT", "Thorax", "", {"Lung"}),
    ("CT", "LUNG", "", {"Lung"}),
    ("CT", "CHESTABDPELVIS", "", {"Lung", "Pelvis"}),
    ("DX", "CHEST", "", {"Lung"}),
    ("MR", "CHEST", "CARDIAC", set()),
    # Prostate: prostate MR coded PROSTATE or PELVIS; pelvic MR that is not a prostate study.
    ("MR", "PROSTATE", "MPMRI", {"Prostate", "Pelvis"}),
    ("MR", "PELVIS", "PROSTATE MRI", {"Prostate", "Pelvis"}),
    ("MR", "PELVIS", "PI-RADS", {"Prostate", "Pelvis"}),
    ("MR", "PELVIS", "RECTUM STAGING", {"Pelvis"}),
    ("CT", "PELVIS", "PROSTATE", {"Pelvis"}),  # CT is not a prostate study, even if the description says so
    ("CT", "ABDOMENPELVIS", "", {"Pelvis"}),
    ("CT", "ABDOMEN", "CT COLONOGRAPHY", {"Colon"}),
    ("CT", "ABDOMEN", "", set()),
    ("MR", "KNEE", "", set()),
])
def test_explorer_body_part_values_each_screening_body_part_finds(modality, body_part, description, found):
    regions = CodingTables.bundled().regions(modality, body_part, (description,))
    assert {EXPLORER[c] for c in regions if c in EXPLORER} == found
    # The series' own coded body part is always there too (a query for CHEST still finds a chest CT).
    assert CodingTables.bundled().code("body_part", body_part).code in regions
