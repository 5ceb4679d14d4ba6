"""What the local FerretDB really enforces (decision 0075), tried against the running server."""

from __future__ import annotations

import pymongo
import pytest
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

from eucaim_node.stack import SERVICE_MODULES, Stack, configs
from eucaim_node.store import MongoSettings, connect
from eucaim_node.store import collections as names

UNAUTHORIZED, AUTHENTICATION_FAILED = 13, 18


def _client(stack: Stack, **options) -> pymongo.MongoClient:
    return pymongo.MongoClient(stack.mongo_url(), serverSelectionTimeoutMS=3000, **options)


def test_a_client_without_credentials_is_refused(stack: Stack) -> None:
    client = _client(stack, tls=True, tlsCAFile=str(configs.ca_file(stack.settings)))
    try:
        with pytest.raises(OperationFailure) as refused:
            client[stack.settings.mongo_database][names.AUDIT_RECORDS].find_one()
        assert refused.value.code == UNAUTHORIZED
        with pytest.raises(OperationFailure) as refused:
            client[stack.settings.mongo_database][names.ANONYMISATION_WITHDRAWALS].insert_one({"_id": "forged"})
        assert refused.value.code == UNAUTHORIZED
    finally:
        client.close()


def test_a_wrong_password_is_refused(stack: Stack) -> None:
    client = _client(stack, **{**stack.mongo_options("catalogue-sync"), "password": "not-the-password"})
    try:
        with pytest.raises(OperationFailure) as refused:
            client[stack.settings.mongo_database][names.CATALOGUE_STUDIES].find_one()
        assert refused.value.code == AUTHENTICATION_FAILED
    finally:
        client.close()


def test_plain_tcp_is_refused(stack: Stack) -> None:
    options = {**stack.mongo_options("audit")}
    del options["tls"], options["tlsCAFile"]
    client = _client(stack, **options)
    try:
        with pytest.raises(ServerSelectionTimeoutError):
            client.admin.command("ping")
    finally:
        client.close()


def test_the_client_verifies_the_servers_certificate(stack: Stack) -> None:
    client = _client(stack, tls=True)  # the system's CAs do not know the stack's CA
    try:
        with pytest.raises(ServerSelectionTimeoutError, match="CERTIFICATE_VERIFY_FAILED"):
            client.admin.command("ping")
    finally:
        client.close()


@pytest.mark.parametrize("service", [*SERVICE_MODULES, "cli"])
async def test_each_principal_connects_with_the_settings_the_stack_gives_it(stack: Stack, service: str) -> None:
    env = stack.service_env(service) if service != "cli" else configs.render_node_env(stack.settings)
    settings = MongoSettings(**{k.removeprefix("EUCAIM_").lower(): v for k, v in env.items() if k.startswith("EUCAIM_MONGO_")})
    client, db = connect(settings, app_name="test")
    try:
        assert (await db.command("connectionStatus"))["ok"] == 1.0
        await db[names.CATALOGUE_STUDIES].find_one()  # authenticated: an ordinary command is served
    finally:
        await client.close()


def test_ferretdb_does_not_enforce_roles(stack: Stack) -> None:
    """The residual risk of decision 0075, pinned: any authenticated user may write any collection locally.

    If this fails, FerretDB started enforcing roles: create the roles locally too and update the decision.
    """
    client = stack.mongo_client("catalogue-sync")
    try:
        scratch = "roles_probe"  # a database of its own: the node's ledger stays untouched
        client[scratch][names.AUDIT_RECORDS].insert_one({"forged": True})  # MongoDB would refuse (no insert)
        client.drop_database(scratch)
        with pytest.raises(OperationFailure, match="roles"):
            client.admin.command("createUser", "probe-user", pwd="x", roles=[{"role": "read", "db": "admin"}])
    finally:
        client.close()
