"""The Kafka grant matrix (eucaim_node.events.grants) against the code: every service's router, the CLI's publications.

The matrix is where the node's ACLs come from; a subscriber or publisher it does not list would be
refused by Kafka at run time, and a grant no code uses is privilege nobody needs. Both fail here.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from eucaim_node.events import (
    CONSUMER_GROUPS,
    DLQ_REPLAY_GROUP,
    DOMAIN_TOPICS,
    KAFKA_GRANTS,
    NODE_TOPICS,
    OPERATOR,
    AccessRecorded,
    WithdrawalRequested,
    consumer_group,
    dead_letter_topic,
    grant,
)
from eucaim_node.stack import SERVICE_MODULES
from eucaim_node.stack.kafka_security import service_principal


def _router_uses(module_name: str) -> tuple[str, set[str], set[str], set[str]]:
    """(service NAME, topics subscribed, topics published, consumer groups) declared by a service's router."""
    module = importlib.import_module(f"eucaim_node.{module_name}.main")
    reads = {t for s in module.router.subscribers for t in s.topic_names}
    writes = {p.topic for p in module.router.publishers}
    groups = {s.group_id for s in module.router.subscribers}
    if groups:  # a consuming service dead-letters to its group's topic (runtime.create_broker)
        writes.add(dead_letter_topic(module.GROUP))
    return module.NAME, reads, writes, groups


@pytest.mark.parametrize("module_name", SERVICE_MODULES)
def test_each_service_is_granted_exactly_what_its_router_reads_and_writes(module_name):
    name, reads, writes, groups = _router_uses(module_name)
    assert name == service_principal(module_name)
    granted = grant(name)
    assert set(granted.reads) == reads
    assert set(granted.writes) == writes
    assert set(granted.groups) == groups


def test_only_the_operator_writes_withdrawal_requests_and_only_audit_reads_everything():
    writers = {g.principal for g in KAFKA_GRANTS.values() if WithdrawalRequested.TOPIC in g.writes}
    assert writers == {OPERATOR}
    everything = set(DOMAIN_TOPICS)
    assert {g.principal for g in KAFKA_GRANTS.values() if everything <= set(g.reads)} == {"audit"}
    assert {g.principal for g in KAFKA_GRANTS.values() if AccessRecorded.TOPIC in g.reads} == {"audit"}


def test_the_operator_may_replay_every_dead_letter_and_record_its_own_access():
    operator = grant(OPERATOR)
    assert set(operator.groups) == {DLQ_REPLAY_GROUP}
    assert {t for t in NODE_TOPICS if t.startswith("eucaim.dlq.")} == set(operator.reads)
    consumed = {t for g in KAFKA_GRANTS.values() if g.principal != OPERATOR for t in g.reads}
    assert consumed | {AccessRecorded.TOPIC, WithdrawalRequested.TOPIC} == set(operator.writes)


def test_no_principal_shares_a_consumer_group_and_none_is_granted_the_cluster():
    groups = [group for g in KAFKA_GRANTS.values() for group in g.groups]
    assert len(groups) == len(set(groups))
    assert {kind for g in KAFKA_GRANTS.values() for kind, _, _ in g.acls()} == {"TOPIC", "GROUP"}


def test_consumer_groups_have_one_home_that_subscribers_grants_and_chart_agree_on():
    """Every subscriber's group is its service's entry in CONSUMER_GROUPS, which is what the ACLs grant; the
    chart's KEDA ``consumerGroup`` values (YAML cannot import the registry) name the same groups."""
    subscribed = {}
    for module_name in SERVICE_MODULES:
        module = importlib.import_module(f"eucaim_node.{module_name}.main")
        for subscriber in module.router.subscribers:
            assert subscriber.group_id == consumer_group(module.NAME) == module.GROUP, module_name
            subscribed[module.NAME] = subscriber.group_id
    assert subscribed | {OPERATOR: DLQ_REPLAY_GROUP} == CONSUMER_GROUPS
    assert {p: g.groups for p, g in KAFKA_GRANTS.items() if g.groups} == {p: (g,) for p, g in CONSUMER_GROUPS.items()}
    values = yaml.safe_load((Path(__file__).parents[1] / "deploy/helm/eucaim-node/values.yaml").read_text())
    charted = {name: c["consumerGroup"] for name, c in values["components"].items() if "consumerGroup" in c}
    assert charted == subscribed


def test_a_principal_that_consumes_nothing_has_no_group():
    with pytest.raises(KeyError, match="consumes nothing"):
        consumer_group("reception")
