"""The generated MongoDB users script: current, and doing what the declaration says (run by Node on a stub of
mongosh's ``db`` API: the roles, users and passwords it creates, then rotates)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from eucaim_node.store import access, collections

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "helm" / "eucaim-node" / "files" / "mongo-users.js"

# A stub of the part of mongosh's API the script uses; it prints the resulting roles and users as JSON.
HARNESS = r"""
const fs = require("fs");
const state = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const admin = {
  getRole: (r) => state.roles[r] || null,
  createRole: (d) => { if (state.roles[d.role]) throw new Error("exists"); state.roles[d.role] = d; },
  updateRole: (r, d) => { state.roles[r] = {role: r, ...d}; },
  getUser: (u) => state.users[u] || null,
  createUser: (d) => { if (state.users[d.user]) throw new Error("exists"); state.users[d.user] = d; },
  updateUser: (u, d) => { state.users[u] = {...state.users[u], ...d}; },
};
const db = {getSiblingDB: (name) => { if (name !== "admin") throw new Error(name); return admin; }};
const lines = [];
new Function("require", "db", "print", fs.readFileSync(process.argv[2], "utf8"))(require, db, (s) => lines.push(s));
fs.writeFileSync(process.argv[3], JSON.stringify(state));
console.log(lines.join("\n"));
"""


def run_script(tmp_path: Path, state: dict, database: str = "node_db") -> tuple[dict, str]:
    node = shutil.which("node") or shutil.which("nodejs")
    assert node, "Node.js is needed to run the generated mongosh script (Debian package nodejs)"
    harness, state_file = tmp_path / "harness.js", tmp_path / "state.json"
    harness.write_text(HARNESS)
    state_file.write_text(json.dumps(state))
    done = subprocess.run([node, str(harness), str(SCRIPT), str(state_file)], capture_output=True, text=True,
                          env={"EUCAIM_MONGO_DATABASE": database, "EUCAIM_MONGO_SECRETS_DIR": str(tmp_path / "secrets")})
    assert done.returncode == 0, done.stderr
    return json.loads(state_file.read_text()), done.stdout


def test_the_committed_script_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "mongo_users.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_script_creates_exactly_the_declared_roles_and_users_then_rotates(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for principal in access.PRINCIPALS:
        (secrets / f"mongo-{principal}-password").write_text(f"first-{principal}\n")
    state, _ = run_script(tmp_path, {"roles": {}, "users": {}})

    for principal, grants in access.GRANTS.items():
        role = state["roles"][access.role_name(principal)]
        granted = {p["resource"]["collection"]: set(p["actions"]) for p in role["privileges"]}
        assert {p["resource"]["db"] for p in role["privileges"]} == {"node_db"}
        assert granted == {name: {str(a) for a in actions} for name, actions in grants.items()}
        assert role["roles"] == []
        user = state["users"][access.mongo_username(principal)]
        assert user["roles"] == [{"role": access.role_name(principal), "db": "admin"}]
        assert user["pwd"] == f"first-{principal}" and user["mechanisms"] == ["SCRAM-SHA-256"]
    assert len(state["roles"]) == len(state["users"]) == len(access.PRINCIPALS)

    sync = state["roles"][access.role_name("catalogue-sync")]["privileges"]
    writes = {p["resource"]["collection"] for p in sync if set(p["actions"]) - {"find"}}
    assert not writes & ({c for c in collections.ALL if c.startswith("audit_")} | set(collections.WITHDRAWAL_LIST))

    (secrets / "mongo-audit-password").write_text("rotated\n")
    (secrets / "mongo-cli-password").unlink()
    state, out = run_script(tmp_path, state)
    assert state["users"]["eucaim-audit"]["pwd"] == "rotated"
    assert state["users"]["eucaim-cli"]["pwd"] == "first-cli"  # no file: the password is kept, and it says so
    assert "eucaim-cli: role updated, password kept" in out
