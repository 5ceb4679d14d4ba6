# /// script
# requires-python = ">=3.11"
# dependencies = ["highdicom==0.28.2"]
# ///
"""Generate the attribute types (PS3.3) that resolve PS3.15's compound action codes.

For every attribute that carries a compound action code (X/Z, X/D, Z/D, X/Z/D, X/Z/U*)
in any column of our Table E.1-1 data file, and for every SOP class whose IOD is
known, record the strongest Type the attribute has in any module of that IOD
(1/1C → "1", 2/2C → "2"), separately for each place it can occur: top level
("") or inside a given sequence (the keyword of the enclosing sequence).

Source: the machine-readable PS3.3 module tables shipped by PyPI ``highdicom``
0.28.2 (``highdicom/_standard/*.json``); the output records the package version and
the sha256 of each source file. Only attributes present in the input are ever
acted on, so an attribute that is Type 1/2 in a module the instance may not carry
is still treated as required: keeping it (Z or a dummy) is conformant either way.

    uv run scripts/deid/build_iod_types.py            # writes the data file
    uv run scripts/deid/build_iod_types.py --check    # exit 1 if stale
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from importlib import resources
from pathlib import Path

from pydicom.datadict import tag_for_keyword

SOURCE_PACKAGE = "highdicom==0.28.2"
FILES = ("sop_class_iod_map.json", "iod_module_map.json", "module_attribute_map.json")
ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "libs/deid/src/eucaim_node/deid/data/ps315_annex_e.json"
OUTPUT = ROOT / "libs/deid/src/eucaim_node/deid/data/iod_attribute_types.json"
STRENGTH = {"1": "1", "1C": "1", "2": "2", "2C": "2"}


def compound_tags() -> set[int]:
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    tags = set()
    for row in table["rules"]:
        actions = [row["basic"], *row["options"].values()]
        if row["tag"] != "PRIVATE" and "x" not in row["tag"] and any("/" in a for a in actions):
            tags.add(int(row["tag"], 16))
    return tags


def load_sources() -> tuple[dict[str, bytes], dict, dict, dict]:
    base = resources.files("highdicom").joinpath("_standard")
    raw = {name: base.joinpath(name).read_bytes() for name in FILES}
    sop_iod, iod_modules, module_attributes = (json.loads(raw[name]) for name in FILES)
    return raw, sop_iod, iod_modules, module_attributes


def build() -> dict:
    raw, sop_iod, iod_modules, module_attributes = load_sources()
    wanted = compound_tags()
    # (tag, parent keyword) -> sop class -> strongest type
    found: dict[tuple[int, str], dict[str, str]] = {}
    for sop_class, iod in sorted(sop_iod.items()):
        for module in iod_modules.get(iod, []):
            for attribute in module_attributes.get(module["key"], []):
                strength = STRENGTH.get(attribute["type"])
                tag = tag_for_keyword(attribute["keyword"])
                if strength is None or tag is None or tag not in wanted:
                    continue
                parent = attribute["path"][-1] if attribute["path"] else ""
                per_class = found.setdefault((tag, parent), {})
                if per_class.get(sop_class) != "1":
                    per_class[sop_class] = strength
    types: dict[str, dict[str, dict[str, list[str]]]] = {}
    for (tag, parent), per_class in sorted(found.items()):
        by_type: dict[str, list[str]] = {}
        for sop_class, strength in sorted(per_class.items()):
            by_type.setdefault(strength, []).append(sop_class)
        types.setdefault(f"{tag:08X}", {})[parent] = by_type
    return {
        "standard": "DICOM PS3.3 module attribute tables (Types), via highdicom",
        "source_package": SOURCE_PACKAGE,
        "source_files_sha256": {name: hashlib.sha256(raw[name]).hexdigest() for name in FILES},
        "generator": "scripts/deid/build_iod_types.py",
        "sop_classes": sorted(sop_iod),
        "types": types,
    }


def render(data: dict) -> str:
    return json.dumps(data, indent=1, sort_keys=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = render(build())
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is stale; rerun scripts/deid/build_iod_types.py", file=sys.stderr)
            return 1
        print("IOD types up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    data = json.loads(text)
    print(f"wrote {OUTPUT.name}: {len(data['types'])} attributes, {len(data['sop_classes'])} SOP classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
