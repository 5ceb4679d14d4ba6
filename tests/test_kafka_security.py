"""Kafka's trust boundary against the real broker of the stack: SASL_SSL, one SCRAM principal each, ACLs.

Each test tries to cross the boundary as a hostile or confused client would, next to a control that
the same connection with the right identity works (so a refusal means "not allowed", not "down").
Issue 9, item 3; decision 0060.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)

from eucaim_node.events import AccessRecorded, StudyIndexed, WithdrawalRequested

pytestmark = [pytest.mark.integration]

EUCAIM_NODE = str(Path(sys.executable).with_name("eucaim-node"))


async def _topics_visible_to(options: dict) -> list[str]:
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=10000)
    try:
        await admin.start()
        return await admin.list_topics()
    finally:
        await admin.close()


async def _publish(options: dict, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(**options, enable_idempotence=True, acks="all", request_timeout_ms=10000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
async def test_a_client_without_sasl_is_refused(stack, protocol):
    assert WithdrawalRequested.TOPIC in await _topics_visible_to(stack.kafka_client_options())  # control
    anonymous = {"bootstrap_servers": stack.kafka_bootstrap(), "security_protocol": protocol}
    if protocol == "SSL":  # TLS that trusts the stack's CA, but no SASL identity
        anonymous["ssl_context"] = stack.kafka_client_options()["ssl_context"]
    with pytest.raises(KafkaConnectionError):
        await _topics_visible_to(anonymous)


async def test_a_wrong_password_is_refused(stack):
    options = {k: v for k, v in stack.kafka_client_options("metadata").items() if k != "bootstrap_servers"}
    host, port = stack.settings.host, stack.settings.kafka_port
    (await create_conn(host, port, **options)).close()  # control: the right password authenticates
    with pytest.raises(SaslAuthenticationFailed):
        await create_conn(host, port, **{**options, "sasl_plain_password": options["sasl_plain_password"] + "x"})
    with pytest.raises(SaslAuthenticationFailed):
        await create_conn(host, port, **{**options, "sasl_plain_username": "intruder"})


@pytest.mark.parametrize("topic", [WithdrawalRequested.TOPIC, AccessRecorded.TOPIC])
async def test_a_service_cannot_request_a_withdrawal_nor_forge_an_access_record(stack, kafka, topic):
    marker = f"forged-{uuid.uuid4()}".encode()
    assert StudyIndexed.TOPIC in await _topics_visible_to(stack.kafka_client_options("metadata"))  # control
    with pytest.raises(TopicAuthorizationFailedError):
        await _publish(stack.kafka_client_options("metadata"), topic, marker)
    assert not [v for _, _, v in await kafka.read(topic) if v == marker]


async def test_the_operator_cli_publishes_a_withdrawal(stack, kafka):
    patient = f"KAFKA-ACL-{uuid.uuid4().hex[:8]}"
    done = subprocess.run([EUCAIM_NODE, "withdraw", "--patient-id", patient, "--yes",
                           "--env-file", str(stack.node_env_file())],
                          env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    subject_key = done.stdout.split("Withdrawal of subject ", 1)[1].split()[0]
    requests = [v for _, _, v in await kafka.read(WithdrawalRequested.TOPIC) if subject_key.encode() in v]
    assert len(requests) == 1


@pytest.mark.parametrize(("principal", "group", "refusal"), [
    ("catalogue-sync", "metadata", GroupAuthorizationFailedError),  # its own topic, another service's group
    ("metadata", "metadata", TopicAuthorizationFailedError),  # its own group, a topic it does not consume
])
async def test_a_service_cannot_use_another_services_group_nor_read_other_topics(stack, principal, group, refusal):
    consumer = AIOKafkaConsumer(StudyIndexed.TOPIC, **stack.kafka_client_options(principal), group_id=group,
                                enable_auto_commit=False)
    try:
        with pytest.raises(refusal):
            await consumer.start()
            await consumer.getmany(timeout_ms=10000)
    finally:
        await consumer.stop()


@pytest.mark.parametrize("command", [["-m", "eucaim_node.metadata"], ["cli-withdraw"]])
def test_a_plaintext_configuration_stops_with_one_line_naming_the_setting(stack, command):
    if command == ["cli-withdraw"]:
        argv = [EUCAIM_NODE, "withdraw", "--patient-id", "P", "--yes", "--env-file", str(stack.node_env_file())]
        env = {**os.environ}
    else:
        argv = [sys.executable, *command]
        env = {**os.environ, **stack.service_env("metadata"), "EUCAIM_HEALTH_PORT": "1"}
    env.update({"EUCAIM_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT": "false"})
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    [line] = [line for line in done.stderr.splitlines() if "EUCAIM_KAFKA_ALLOW_INSECURE_PLAINTEXT" in line]
    assert "EUCAIM_KAFKA_SECURITY_PROTOCOL" in line and "Traceback" not in done.stderr
