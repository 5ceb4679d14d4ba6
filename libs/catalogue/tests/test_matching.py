"""The in-memory filter's combinators and paths (the compiled shortcuts keep MongoDB's semantics)."""

import pytest

from eucaim_node.catalogue.matching import compile_filter

DOCS = [
    {"_id": 1, "sex_code": "F", "modality_codes": ["CT", "MR"], "age_years": 45.0, "quality": {"flags": ["a", "b"]}},
    {"_id": 2, "sex_code": "M", "modality_codes": ["CT"], "age_years": 70.0},
    {"_id": 3, "sex_code": ["F"], "age_years": True},
    {"_id": 4},
]


def matching(mongo_filter):
    match = compile_filter(mongo_filter)
    return [d["_id"] for d in DOCS if match(d)]


@pytest.mark.parametrize(("mongo_filter", "expected"), [
    ({}, [1, 2, 3, 4]),
    ({"$and": []}, [1, 2, 3, 4]),
    ({"$or": []}, []),
    ({"sex_code": "F"}, [1, 3]),
    ({"$and": [{"sex_code": "F"}, {"modality_codes": "CT"}]}, [1]),
    ({"$and": [{"sex_code": "F"}, {"modality_codes": "MR"}, {"age_years": {"$gte": 40}}]}, [1]),
    ({"$and": [{"sex_code": "F"}, {"modality_codes": "CT"}, {"age_years": {"$gte": 50}}]}, []),
    ({"$or": [{"sex_code": "M"}, {"age_years": {"$lt": 50}}]}, [1, 2]),
    ({"$or": [{"sex_code": "M"}]}, [2]),
    ({"$or": [{"sex_code": "M"}, {"sex_code": "F"}, {"_id": 4}]}, [1, 2, 3, 4]),
    ({"age_years": {"$gte": 40, "$lt": 71}}, [1, 2]),  # a boolean is no number
    ({"modality_codes": {"$exists": False}}, [3, 4]),
    ({"quality.flags": "b"}, [1]),
    ({"quality.flags.1": "b"}, [1]),
    ({"quality.flags.2": {"$exists": True}}, []),
    ({"modality_codes.0": {"$in": ["CT"]}}, [1, 2]),
])
def test_filters_match_as_mongodb_defines(mongo_filter, expected):
    assert matching(mongo_filter) == expected
