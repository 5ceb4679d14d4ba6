"""The dataset-service's SHA3-256 aggregates, the BagIt bag (validated by the bagit package) and verify."""

from __future__ import annotations

import base64
import hashlib
import json
import os

import bagit

from eucaim_node.datasets.integrity import measure, verify, write_bag
from eucaim_node.datasets.layout import DatasetRoot, dump_json, make_read_only, remove_tree

DATASET_ID = "3d44ba8a-16df-4eca-ac5f-00155d6b30e6"


def build(tmp_path):
    root = DatasetRoot(tmp_path)
    top = root.dataset_dir(DATASET_ID)
    index = [{"studyId": "2.25.1", "studyName": "2.25.1", "subjectName": "S1", "path": "S1/2.25.1",
              "series": [{"folderName": "2.25.12", "tags": []}, {"folderName": "2.25.11", "tags": []}], "url": "urn:oid:2.25.1"},
             {"studyId": "2.25.2", "studyName": "2.25.2", "subjectName": "S2", "path": "S2/2.25.2",
              "series": [{"folderName": "2.25.21", "tags": []}], "url": "urn:oid:2.25.2"}]
    content = {"S1/2.25.1/2.25.12": {"b.dcm": b"B" * 10, "a.dcm": b"A" * 5},
               "S1/2.25.1/2.25.11": {"c.dcm": b"C"}, "S2/2.25.2/2.25.21": {"d.dcm": b"D" * 3}}
    for folder, files in content.items():
        (top / folder).mkdir(parents=True)
        for name, data in files.items():
            (top / folder / name).write_bytes(data)
    (top / "index.json").write_bytes(dump_json(index))
    (top / "eforms.json").write_bytes(dump_json([{"subjectName": "S1", "eForm": {}}, {"subjectName": "S2", "eForm": {}}]))
    return root, top, index


def upstream_images_hash(top, index):
    """The aggregate as dataset_service/hash.py defines it, spelled out independently."""
    def series_digest(folder):
        sha = hashlib.sha3_256()
        for name in sorted(os.listdir(folder)):
            sha.update((folder / name).read_bytes())
        return sha.digest()
    images = hashlib.sha3_256()
    for study in index:
        study_sha = hashlib.sha3_256()
        for series in study["series"]:
            study_sha.update(series_digest(top / study["path"] / series["folderName"]))
        images.update(study_sha.digest())
    return base64.b64encode(images.digest()).decode()


def test_aggregates_follow_the_dataset_service_definition(tmp_path):
    _, top, index = build(tmp_path)
    hashes = measure(top, index).hashes
    assert hashes.images == upstream_images_hash(top, index)
    assert hashes.index == base64.b64encode(hashlib.sha3_256((top / "index.json").read_bytes()).digest()).decode()
    assert hashes.clinical == base64.b64encode(hashlib.sha3_256((top / "eforms.json").read_bytes()).digest()).decode()
    assert hashes.files == 6 and hashes.bytes == 19 + len((top / "index.json").read_bytes()) + len(
        (top / "eforms.json").read_bytes())
    # series order is the index's, not sorted: swapping it changes the study hash
    swapped = json.loads(json.dumps(index))
    swapped[0]["series"].reverse()
    assert measure(top, swapped).hashes.studies[0].hash != hashes.studies[0].hash
    assert measure(top, swapped).hashes.studies[1] == hashes.studies[1]


def test_bag_validates_with_the_bagit_package_and_verify_names_the_tampered_file(tmp_path):
    root, top, index = build(tmp_path)
    measured = measure(top, index)
    write_bag(root.bag_dir(DATASET_ID), top, measured, dataset_id=DATASET_ID, version=1)
    make_read_only(top)
    bag = bagit.Bag(str(root.bag_dir(DATASET_ID)))
    bag.validate()
    assert verify(top, root.bag_dir(DATASET_ID), measured.hashes).ok

    target = top / "S1/2.25.1/2.25.12/b.dcm"
    os.chmod(target, 0o644)
    data = bytearray(target.read_bytes())
    data[3] ^= 1
    target.write_bytes(bytes(data))
    verdict = verify(top, root.bag_dir(DATASET_ID), measured.hashes)
    assert (verdict.ok, verdict.first_difference) == (False, "S1/2.25.1/2.25.12/b.dcm")
    try:
        bagit.Bag(str(root.bag_dir(DATASET_ID))).validate()
        raise AssertionError("bagit accepted a changed file")
    except bagit.BagValidationError:
        pass


def test_verify_names_a_missing_an_extra_file_and_a_changed_manifest(tmp_path):
    root, top, index = build(tmp_path)
    measured = measure(top, index)
    write_bag(root.bag_dir(DATASET_ID), top, measured, dataset_id=DATASET_ID, version=1)
    (top / "S2/2.25.2/2.25.21/extra.dcm").write_bytes(b"x")
    assert verify(top, root.bag_dir(DATASET_ID), measured.hashes).first_difference == "S2/2.25.2/2.25.21/extra.dcm"
    (top / "S2/2.25.2/2.25.21/extra.dcm").unlink()
    (top / "S1/2.25.1/2.25.11/c.dcm").unlink()
    assert verify(top, root.bag_dir(DATASET_ID), measured.hashes).first_difference == "S1/2.25.1/2.25.11/c.dcm"
    manifest = root.bag_dir(DATASET_ID) / "manifest-sha256.txt"
    manifest.write_text(manifest.read_text().replace("data/S1/2.25.1/2.25.11/c.dcm\n", ""))
    verdict = verify(top, root.bag_dir(DATASET_ID), measured.hashes)
    assert verdict.first_difference.endswith("manifest-sha256.txt")


def test_remove_tree_removes_a_read_only_dataset(tmp_path):
    _, top, _ = build(tmp_path)
    make_read_only(top)
    remove_tree(top)
    assert not top.exists()
