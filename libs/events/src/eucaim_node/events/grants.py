"""Who may read and write which Kafka topic: the one declaration the node's Kafka ACLs come from.

Each principal (one SCRAM user per service, one for the operator's CLI) gets exactly the topics its
code consumes and publishes, its own consumer group, and its group's dead-letter topic; nothing else
(decision 0060). The local stack turns :data:`KAFKA_GRANTS` into ACLs at start; ``eucaim-node kafka
acls`` prints the same ACLs for an operator's Kafka; a unit test holds every service's router to its
grant, so a new subscriber or publisher without a grant fails the build.

Service principals are the services' names (``catalogue-sync``, not the module name). The super user
``admin`` (the broker's own principal, used for provisioning) is not in the matrix: it needs no ACLs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .envelope import Event
from .models import (
    AccessRecorded,
    CollectionDelivered,
    CollectionPublished,
    CollectionUpdated,
    DatasetCommand,
    StudyAnonymised,
    StudyIndexed,
    StudyQuarantined,
    StudyReceived,
    StudyRemoved,
    StudyWithdrawn,
    StudyWithheld,
    WithdrawalRequested,
)
from .topics import DOMAIN_TOPICS, dead_letter_topic

#: The broker's own principal: the inter-broker and controller identity and the only super user.
SUPER_USER = "admin"
#: The operator's CLI (withdraw, dlq list/replay, search, audit verify).
OPERATOR = "operator"
#: The consumer group whose committed offsets record which dead letters the operator replayed.
DLQ_REPLAY_GROUP = "eucaim-node-dlq-replay"


@dataclass(frozen=True)
class KafkaGrant:
    """What one principal may do: READ ``reads``, WRITE ``writes``, READ (join, commit) ``groups``."""

    principal: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def acls(self) -> tuple[tuple[str, str, str], ...]:
        """(resource type, literal name, operation) Kafka must ALLOW this principal; READ and WRITE imply DESCRIBE,
        WRITE implies the idempotent producer's IDEMPOTENT_WRITE (KIP-679); nothing on the cluster (no CREATE)."""
        return (*(("TOPIC", t, "READ") for t in self.reads), *(("TOPIC", t, "WRITE") for t in self.writes),
                *(("GROUP", g, "READ") for g in self.groups))

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic the principal touches, sorted (what it must find provisioned)."""
        return tuple(sorted(set(self.reads) | set(self.writes)))


def _topics(*events: type[Event]) -> tuple[str, ...]:
    return tuple(e.TOPIC for e in events)


def _service(name: str, *, consumes: tuple[str, ...] = (), publishes: tuple[str, ...] = ()) -> KafkaGrant:
    """A service's grant; a consuming service has its own group (named like the service) and dead-letter topic."""
    if not consumes:
        return KafkaGrant(name, writes=publishes)
    return KafkaGrant(name, reads=consumes, writes=(*publishes, dead_letter_topic(name)), groups=(name,))


_CONSUMING_SERVICES: tuple[KafkaGrant, ...] = (
    _service("anonymisation", consumes=_topics(StudyReceived, WithdrawalRequested),
             publishes=_topics(StudyAnonymised, StudyQuarantined, StudyWithheld, StudyWithdrawn)),
    _service("metadata", consumes=_topics(StudyAnonymised, WithdrawalRequested),
             publishes=_topics(StudyIndexed, StudyRemoved)),
    _service("catalogue-sync", consumes=_topics(StudyIndexed, StudyRemoved),
             publishes=_topics(CollectionUpdated, CollectionPublished, CollectionDelivered, AccessRecorded)),
    _service("materialiser", consumes=_topics(DatasetCommand, WithdrawalRequested), publishes=_topics(AccessRecorded)),
)

#: Dead-letter topics the audit service records (its own are not: it cannot audit itself).
AUDITED_DEAD_LETTER_TOPICS: tuple[str, ...] = tuple(dead_letter_topic(g.principal) for g in _CONSUMING_SERVICES)

_AUDIT = _service("audit", consumes=(*DOMAIN_TOPICS, *AUDITED_DEAD_LETTER_TOPICS))

#: Every dead-letter topic of the node.
DEAD_LETTER_TOPICS: tuple[str, ...] = (*AUDITED_DEAD_LETTER_TOPICS, dead_letter_topic(_AUDIT.principal))

#: The operator writes withdrawal requests and its own access records, reads every dead-letter topic, and
#: replays a dead letter to the topic it came from: any topic a consuming service reads.
_OPERATOR = KafkaGrant(
    OPERATOR,
    reads=DEAD_LETTER_TOPICS,
    writes=tuple(dict.fromkeys((*_topics(WithdrawalRequested, AccessRecorded, DatasetCommand),
                                *(t for g in (*_CONSUMING_SERVICES, _AUDIT) for t in g.reads)))),
    groups=(DLQ_REPLAY_GROUP,),
)

#: Principal -> grant, for the five services and the operator.
KAFKA_GRANTS: dict[str, KafkaGrant] = {
    g.principal: g
    for g in (_service("reception", publishes=_topics(StudyReceived)), *_CONSUMING_SERVICES,
              # the job service (issue 11) records submissions, access checks, runs and releases
              _service("jobs", publishes=_topics(AccessRecorded)), _AUDIT, _OPERATOR)
}

#: Every topic the node uses: what the stack (or the operator) creates before the services start.
NODE_TOPICS: tuple[str, ...] = tuple(sorted({t for g in KAFKA_GRANTS.values() for t in g.topics}))


#: Consuming principal -> its one consumer group: the only place a group is named. Services take their
#: ``GROUP`` from here (:func:`consumer_group`), the ACLs above grant it, the lag probe measures what the
#: subscribers declare, and the chart's ``consumerGroup`` values are checked against it by a test.
CONSUMER_GROUPS: dict[str, str] = {g.principal: group for g in KAFKA_GRANTS.values() for group in g.groups}


def consumer_group(principal: str) -> str:
    """The consumer group of a consuming principal; a KeyError names the principals that consume."""
    try:
        return CONSUMER_GROUPS[principal]
    except KeyError:
        raise KeyError(f"{principal!r} consumes nothing; consuming principals: {', '.join(CONSUMER_GROUPS)}") from None


def grant(principal: str) -> KafkaGrant:
    """The grant of ``principal``; a KeyError names the known ones."""
    try:
        return KAFKA_GRANTS[principal]
    except KeyError:
        raise KeyError(f"no Kafka grant for {principal!r}; known: {', '.join(KAFKA_GRANTS)}") from None
