"""SR content items: Table E.3.4-1 and *Clean Structured Content* (PS3.15 E.3.4).

Every content item (an item with ValueType and ConceptNameCodeSequence, at any
depth of ContentSequence or AcquisitionContextSequence) is looked up by concept
name in Table E.3.4-1. The selected column's action applies to the item's value:
``X`` removes the item, ``D`` replaces the value with a dummy, ``Z`` empties it,
``C`` cleans text (:mod:`.cleaner`) and shifts dates, ``K``/``U`` keep it (UIDs and
references are then remapped by the attribute rules). ``X/D`` resolves to X.
TEXT items whose concept is not in the table are cleaned. The attributes inside
each item (PersonName, Date, UID, ReferencedSOPSequence, ...) then go through
Table E.1-1 like any other, which keeps every reference consistent.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydicom.dataset import Dataset

from .cleaner import clean_text
from .dummies import DUMMY_PERSON, DUMMY_TEXT, dummy_for
from .identity import IdentifyingValues
from .table import ContentRule, choose_action

#: Table E.3.4-1 as loaded: (coding scheme, code value) of the concept name → its rows.
ContentRules = Mapping[tuple[str, str], tuple[ContentRule, ...]]

#: ValueType → (keyword of the value attribute, its VR).
VALUE_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "TEXT": ("TextValue", "UT"),
    "PNAME": ("PersonName", "PN"),
    "DATE": ("Date", "DA"),
    "TIME": ("Time", "TM"),
    "DATETIME": ("DateTime", "DT"),
    "UIDREF": ("UID", "UI"),
}


VALUE_TYPE = 0x0040A040
CONCEPT_NAME_CODE_SEQUENCE = 0x0040A043


def is_content_item(item: Dataset) -> bool:
    """True for an SR content item (PS3.3 C.17.3)."""
    return VALUE_TYPE in item and CONCEPT_NAME_CODE_SEQUENCE in item


def value_type_of(item: Dataset) -> str:
    """The item's ValueType, upper case."""
    return str(item[VALUE_TYPE].value or "").strip().upper()


def concept_of(item: Dataset) -> tuple[str, str] | None:
    """(scheme designator, code value) of the item's concept name."""
    seq = item[CONCEPT_NAME_CODE_SEQUENCE].value
    if not seq:
        return None
    code = seq[0]
    value = code.get("CodeValue") or code.get("LongCodeValue") or code.get("URNCodeValue")
    scheme = code.get("CodingSchemeDesignator") or ""
    if not value:
        return None
    return str(scheme).strip(), str(value).strip()


def rule_for_item(rules: ContentRules, item: Dataset) -> ContentRule | None:
    """The Table E.3.4-1 row for the item's concept name (and value type, if listed)."""
    concept = concept_of(item)
    if concept is None:
        return None
    rows = rules.get(concept)
    if not rows:
        return None
    value_type = value_type_of(item)
    for row in rows:
        if row.value_type == value_type:
            return row
    return rows[0]


def clean_content_item(item: Dataset, rules: ContentRules, option_keys: frozenset[str],
                       identity: IdentifyingValues) -> bool:
    """Apply Table E.3.4-1 to one content item under the profile's `option_keys`; False means remove the item.

    Free text is cleaned of the instance's own identifying values (`identity`).
    """
    rule = rule_for_item(rules, item)
    value_type = value_type_of(item)
    if rule is None:
        if value_type == "TEXT":
            _clean_value(item, identity)
        return True
    action = choose_action(rule.basic, rule.options, option_keys)
    if action.startswith("X"):
        return False
    if action == "D":
        _dummy_value(item, value_type)
    elif action == "Z":
        _empty_value(item, value_type)
    elif action == "C" and value_type == "TEXT":
        _clean_value(item, identity)
    return True


def _clean_value(item: Dataset, identity: IdentifyingValues) -> None:
    text = item.get("TextValue")
    if text:
        item.TextValue = clean_text(str(text), identity, "UT")


def _dummy_value(item: Dataset, value_type: str) -> None:
    target = VALUE_ATTRIBUTES.get(value_type)
    if target is None:
        if value_type == "NUM":
            for measured in item.get("MeasuredValueSequence") or ():
                measured.NumericValue = "0"
        return
    keyword, vr = target
    if keyword in item:
        if vr == "PN":
            setattr(item, keyword, DUMMY_PERSON)
        elif vr == "UT":
            setattr(item, keyword, DUMMY_TEXT)
        elif vr != "UI":  # UIDs are replaced consistently by the attribute rules
            setattr(item, keyword, dummy_for(vr))


def _empty_value(item: Dataset, value_type: str) -> None:
    target = VALUE_ATTRIBUTES.get(value_type)
    if target is not None and target[0] in item and target[1] != "UI":
        item[target[0]].value = None
