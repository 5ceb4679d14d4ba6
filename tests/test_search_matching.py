"""The federated search evaluated in memory (decision 0092) answers exactly what FerretDB answers for the same
filter on the same documents: every key and condition type the compiler accepts, hostile documents included."""

from __future__ import annotations

import itertools
import random

from eucaim_node.catalogue.matching import compile_filter
from eucaim_node.catalogue.search import QueryCompiler
from eucaim_node.store import collections

CODES = {"modality": ["RID10321", "RID10312", "SNOMEDCT261665006"],
         "body_part": ["SNOMEDCT51185008", "SNOMEDCT69536005"],
         "manufacturer": ["SNOMEDCT261665006", "birnlex_3065"]}


def documents(collection_id: str) -> list[dict]:
    rnd = random.Random(5)
    docs = []
    for n in range(160):
        doc = {"_id": f"{collection_id}-{n}", "collection_id": collection_id, "subject_key": f"S{n % 50}"}
        for path, raw in (("modality", "modalities"), ("body_part", "body_parts"), ("manufacturer", "manufacturers")):
            if rnd.random() < 0.9:
                codes = rnd.sample(CODES[path], rnd.randint(0, len(CODES[path])))
                doc[f"{path}_codes"] = codes
                doc[raw] = [rnd.choice(["CT", "Siemens Healthineers", "acme.B.V.", "CHEST", "MR"]) for _ in codes]
        if rnd.random() < 0.85:
            doc["sex_code"] = rnd.choice(["SNOMEDCT248152002", "SNOMEDCT248153007", "SNOMEDCT261665006", None])
            doc["sex"] = rnd.choice(["F", "M", "O", "Female"])
        age = rnd.choice([None, 0, 0.5, 29.99, 30, 44.5, 45, 70, 70.5, 71, 999, "45", True])
        if age is not None or rnd.random() < 0.5:
            doc["age_years"] = age
        if rnd.random() < 0.5:
            doc["condition_code"] = rnd.choice(["SNOMEDCT363358000", "SNOMEDCT254637007"])
            doc["condition_label"] = rnd.choice(["Lung cancer", "Prostate cancer"])
        docs.append(doc)
    return docs


def queries(compiler: QueryCompiler) -> list[dict]:
    conditions = []
    for key, spec in compiler.keys.items():
        if key[0].islower():
            continue  # synonyms compile to the same filters
        if spec.numeric_path:
            conditions += [{"key": key, "type": "EQUALS", "value": 45}, {"key": key, "type": "NOT_EQUALS", "value": 45},
                           {"key": key, "type": "BETWEEN", "value": {"min": 30, "max": 70}},
                           {"key": key, "type": "BETWEEN", "value": {"min": 30}},
                           {"key": key, "type": "LOWER_THAN", "value": 30}, {"key": key, "type": "GREATER_THAN", "value": 70}]
            continue
        values = [v for field, vs in CODES.items() if spec.field == field for v in vs] or \
            ["SNOMEDCT248152002", "SNOMEDCT363358000", "SNOMEDCT261665006"]
        for value in values[:2]:
            conditions += [{"key": key, "type": "EQUALS", "value": value},
                           {"key": key, "type": "NOT_EQUALS", "value": value}]
        conditions += [{"key": key, "type": "IN", "value": values}, {"key": key, "type": "CONTAINS", "value": "b.v"},
                       {"key": key, "type": "CONTAINS", "value": "siem"}]
    trees = [{"operand": "AND", "children": [c]} for c in conditions]
    rnd = random.Random(9)
    for a, b in itertools.islice(itertools.combinations(conditions, 2), 0, None, 7):
        trees.append({"operand": rnd.choice(["AND", "OR"]), "children": [a, {"operand": "OR", "children": [b]}]})
    trees.append({"operand": "OR", "children": []})
    compiled = []
    for tree in trees:
        try:
            compiled.append(compiler.compile(tree).filter)
        except ValueError:
            continue  # a condition type this key does not take
    return compiled


def test_in_memory_evaluation_equals_ferretdb_on_every_query_shape(stack, observer, unique_seed):
    collection_id = f"equivalence-{unique_seed}"
    studies = observer.db[collections.CATALOGUE_STUDIES]
    docs = documents(collection_id)
    studies.insert_many([dict(d) for d in docs])
    try:
        filters = queries(QueryCompiler())
        assert len(filters) > 60
        for mongo_filter in filters:
            expected = {d["_id"] for d in studies.find({"$and": [{"collection_id": collection_id}, mongo_filter]},
                                                        {"_id": 1})}
            match = compile_filter(mongo_filter)
            assert {d["_id"] for d in docs if match(d)} == expected, mongo_filter
    finally:
        studies.delete_many({"collection_id": collection_id})
