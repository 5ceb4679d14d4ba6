import re

import pytest
from eucaim_node.deid import keyed_hash, pseudonymise_patient_id, pseudonymise_uid
from pydicom.uid import UID

from .conftest import KEY, OTHER_KEY


def test_uid_is_valid_2_25_and_short() -> None:
    uid = pseudonymise_uid("1.2.3.4", KEY)
    assert uid.startswith("2.25.")
    assert len(uid) <= 64
    assert UID(uid).is_valid
    assert re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", uid)


def test_uid_is_deterministic_and_key_separated() -> None:
    assert pseudonymise_uid("1.2.3.4", KEY) == pseudonymise_uid("1.2.3.4", KEY)
    assert pseudonymise_uid("1.2.3.4", KEY) != pseudonymise_uid("1.2.3.4", OTHER_KEY)
    assert pseudonymise_uid("1.2.3.4", KEY) != pseudonymise_uid("1.2.3.5", KEY)


def test_uid_ignores_padding() -> None:
    assert pseudonymise_uid("1.2.3.4\x00", KEY) == pseudonymise_uid(" 1.2.3.4 ", KEY)


def test_patient_id_pseudonym() -> None:
    p = pseudonymise_patient_id("HOSP-1", KEY, "ES01")
    assert re.fullmatch(r"ES01-[0-9a-f]{20}", p)
    assert p == pseudonymise_patient_id("HOSP-1", KEY, "ES01")
    assert p != pseudonymise_patient_id("HOSP-1", OTHER_KEY, "ES01")
    assert p != pseudonymise_patient_id("HOSP-2", KEY, "ES01")


@pytest.mark.parametrize("prefix", ["", "a\\b", "x" * 44])
def test_patient_id_rejects_bad_prefix(prefix: str) -> None:
    with pytest.raises(ValueError):
        pseudonymise_patient_id("1", KEY, prefix)


def test_keyed_hash_domain_separation() -> None:
    a = keyed_hash("value", KEY, "audit")
    assert a == keyed_hash("value", KEY, "audit")
    assert a != keyed_hash("value", KEY, "logs")
    assert a != keyed_hash("value", OTHER_KEY, "audit")
    assert re.fullmatch(r"[0-9a-f]{64}", a)
    # the UID pseudonym is not a keyed_hash of any purpose the caller can choose
    assert str(int(a[:32], 16)) not in pseudonymise_uid("value", KEY)
