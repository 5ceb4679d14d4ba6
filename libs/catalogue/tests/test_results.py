"""Small-cell protection of search answers (pure)."""

import pytest

from eucaim_node.catalogue.results import Protection, build_answer

COLLECTIONS = {"lung": ("Lung", "d1"), "rare": ("Rare", "d2")}


def studies(collection, n, *, sex="F", age=60.0, start=0, per_subject=1, modality="CT"):
    return [{"collection_id": collection, "subject_key": f"S{collection}{(start + i) // per_subject}", "sex": sex,
             "age_years": age + i, "modalities": [modality], "body_parts": ["CHEST"]} for i in range(n)]


def test_exact_counts_above_the_threshold_and_suppressed_cells_left_out():
    docs = studies("lung", 12, per_subject=2) + studies("rare", 2)
    answer = build_answer(docs, COLLECTIONS, Protection("suppress", min_count=3), "q")
    [lung] = answer.body["collections"]
    assert (lung["id"], lung["studies_count"], lung["subjects_count"]) == ("lung", 12, 6)
    assert answer.suppressed_cells == 1 and answer.reported_collections == 1
    assert answer.body["total"] == {"studies_count": 12, "subjects_count": 6}
    assert "rare" not in str(answer.body)


def test_facets_need_enough_subjects_and_the_age_range_hides_extremes():
    docs = studies("lung", 5, sex="F", age=40.0) + studies("lung", 1, sex="M", age=90.0, start=5, modality="PT")
    [lung] = build_answer(docs, COLLECTIONS, Protection("suppress", min_count=3), "q").body["collections"]
    assert lung["gender"] == ["Female"] and lung["modality"] == lung["modalities"] == ["CT"]
    # ages 40..44 and 90: the 3rd youngest (42) and 3rd oldest (43), widened to 5 years; the lone 90 never shows
    assert lung["age_range"] == {"min": 40, "max": 45}


def test_rounding_and_the_floor():
    docs = studies("lung", 23)
    [lung] = build_answer(docs, COLLECTIONS, Protection("round", min_count=5, step=10), "q").body["collections"]
    assert (lung["studies_count"], lung["subjects_count"]) == (20, 20)
    [small] = build_answer(studies("lung", 6), COLLECTIONS, Protection("round", min_count=5, step=10), "q").body["collections"]
    assert small["studies_count"] == 10  # rounded, and never below the threshold


def test_noise_is_deterministic_per_query_and_secret_and_varies_between_queries():
    docs = studies("lung", 200)
    p = Protection("perturb", min_count=10, step=10, epsilon=0.28, secret=b"k" * 32)

    def count(query, protection=p):
        return build_answer(docs, COLLECTIONS, protection, query).body["collections"][0]["studies_count"]

    assert count("q1") == count("q1")
    values = {count(f"q{i}") for i in range(40)}
    assert len(values) > 1 and all(v % 10 == 0 and v >= 10 for v in values)
    assert all(abs(v - 200) <= 60 for v in values)  # Laplace(1/0.28) then rounding: far tails are negligible
    other = Protection("perturb", min_count=10, step=10, epsilon=0.28, secret=b"x" * 32)
    assert [count(f"q{i}") for i in range(40)] != [count(f"q{i}", other) for i in range(40)]


@pytest.mark.parametrize("mode", ["suppress", "round", "perturb"])
def test_below_the_threshold_nothing_is_reported_in_any_mode(mode):
    answer = build_answer(studies("lung", 4), COLLECTIONS, Protection(mode, min_count=5, secret=b"s"), "q")
    assert answer.body["collections"] == [] and answer.suppressed_cells == 1


def test_studies_of_unpublished_collections_are_never_answered():
    answer = build_answer(studies("secret-project", 50), COLLECTIONS, Protection("suppress", min_count=1), "q")
    assert answer.body["collections"] == [] and answer.suppressed_cells == 0
