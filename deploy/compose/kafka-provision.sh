#!/bin/sh
# Generated from the node's grant matrix (eucaim_node.events.grants) by `eucaim-node kafka provision-script`;
# do not edit (tests/test_compose.py fails when it is stale). Idempotent: run it after every upgrade.
set -eu
: "${KAFKA_BIN:=/opt/kafka/bin}" "${KAFKA_BOOTSTRAP:=kafka:9094}"
: "${KAFKA_COMMAND_CONFIG:=/etc/eucaim/kafka-admin.properties}" "${KAFKA_PASSWORDS_DIR:=/run/secrets}"
: "${KAFKA_TOPIC_PARTITIONS:=3}" "${KAFKA_REPLICATION_FACTOR:=1}"

# Topics: created here, never by the services (they get no CREATE).
for topic in eucaim.access.v1 eucaim.collection.delivered.v1 eucaim.collection.published.v1 eucaim.collection.updated.v1 eucaim.dataset.command.v1 eucaim.dlq.anonymisation.v1 eucaim.dlq.audit.v1 eucaim.dlq.catalogue-sync.v1 eucaim.dlq.materialiser.v1 eucaim.dlq.metadata.v1 eucaim.study.anonymised.v1 eucaim.study.indexed.v1 eucaim.study.quarantined.v1 eucaim.study.received.v1 eucaim.study.removed.v1 eucaim.study.withdrawn.v1 eucaim.study.withheld.v1 eucaim.subject.withdrawal-requested.v1; do
  "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --create --if-not-exists --topic "$topic" \
    --partitions "$KAFKA_TOPIC_PARTITIONS" --replication-factor "$KAFKA_REPLICATION_FACTOR"
done

# SCRAM passwords go to kafka-configs.sh in a 0600 file (--add-config-file), never as an argument that
# `ps` would show; printf is a shell builtin, so no process is given the password either.
umask 077
scram_dir="$(mktemp -d)"
trap 'rm -rf "$scram_dir"' EXIT

# reception
printf 'SCRAM-SHA-512=password=%s\n' "$(cat "$KAFKA_PASSWORDS_DIR/kafka-reception.password")" > "$scram_dir/reception.properties"
"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --alter --entity-type users --entity-name reception --add-config-file "$scram_dir/reception.properties"
rm -f "$scram_dir/reception.properties"
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:reception --operation Write --topic eucaim.study.received.v1

# anonymisation
printf 'SCRAM-SHA-512=password=%s\n' "$(cat "$KAFKA_PASSWORDS_DIR/kafka-anonymisation.password")" > "$scram_dir/anonymisation.properties"
"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --alter --entity-type users --entity-name anonymisation --add-config-file "$scram_dir/anonymisation.properties"
rm -f "$scram_dir/anonymisation.properties"
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:anonymisation --operation Read --topic eucaim.study.received.v1 --topic eucaim.subject.withdrawal-requested.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:anonymisation --operation Write --topic eucaim.study.anonymised.v1 --topic eucaim.study.quarantined.v1 --topic eucaim.study.withheld.v1 --topic eucaim.study.withdrawn.v1 --topic eucaim.dlq.anonymisation.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:anonymisation --operation Read --group anonymisation

# metadata
printf 'SCRAM-SHA-512=password=%s\n' "$(cat "$KAFKA_PASSWORDS_DIR/kafka-metadata.password")" > "$scram_dir/metadata.properties"
"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --alter --entity-type users --entity-name metadata --add-config-file "$scram_dir/metadata.properties"
rm -f "$scram_dir/metadata.properties"
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:metadata --operation Read --topic eucaim.study.anonymised.v1 --topic eucaim.subject.withdrawal-requested.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:metadata --operation Write --topic eucaim.study.indexed.v1 --topic eucaim.study.removed.v1 --topic eucaim.dlq.metadata.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:metadata --operation Read --group metadata

# catalogue-sync
printf 'SCRAM-SHA-512=password=%s\n' "$(cat "$KAFKA_PASSWORDS_DIR/kafka-catalogue-sync.password")" > "$scram_dir/catalogue-sync.properties"
"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --alter --entity-type users --entity-name catalogue-sync --add-config-file "$scram_dir/catalogue-sync.properties"
rm -f "$scram_dir/catalogue-sync.properties"
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:catalogue-sync --operation Read --topic eucaim.study.indexed.v1 --topic eucaim.study.removed.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:catalogue-sync --operation Write --topic eucaim.collection.updated.v1 --topic eucaim.collection.published.v1 --topic eucaim.collection.delivered.v1 --topic eucaim.access.v1 --topic eucaim.dlq.catalogue-sync.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:catalogue-sync --operation Read --group catalogue-sync

# materialiser
printf 'SCRAM-SHA-512=password=%s\n' "$(cat "$KAFKA_PASSWORDS_DIR/kafka-materialiser.password")" > "$scram_dir/materialiser.properties"
"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --alter --entity-type users --entity-name materialiser --add-config-file "$scram_dir/materialiser.properties"
rm -f "$scram_dir/materialiser.properties"
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:materialiser --operation Read --topic eucaim.dataset.command.v1 --topic eucaim.subject.withdrawal-requested.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:materialiser --operation Write --topic eucaim.access.v1 --topic eucaim.dlq.materialiser.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:materialiser --operation Read --group materialiser

# jobs
printf 'SCRAM-SHA-512=password=%s\n' "$(cat "$KAFKA_PASSWORDS_DIR/kafka-jobs.password")" > "$scram_dir/jobs.properties"
"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --alter --entity-type users --entity-name jobs --add-config-file "$scram_dir/jobs.properties"
rm -f "$scram_dir/jobs.properties"
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:jobs --operation Write --topic eucaim.access.v1

# audit
printf 'SCRAM-SHA-512=password=%s\n' "$(cat "$KAFKA_PASSWORDS_DIR/kafka-audit.password")" > "$scram_dir/audit.properties"
"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --alter --entity-type users --entity-name audit --add-config-file "$scram_dir/audit.properties"
rm -f "$scram_dir/audit.properties"
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:audit --operation Read --topic eucaim.study.received.v1 --topic eucaim.study.anonymised.v1 --topic eucaim.study.quarantined.v1 --topic eucaim.study.indexed.v1 --topic eucaim.collection.updated.v1 --topic eucaim.access.v1 --topic eucaim.subject.withdrawal-requested.v1 --topic eucaim.study.withdrawn.v1 --topic eucaim.study.withheld.v1 --topic eucaim.study.removed.v1 --topic eucaim.collection.published.v1 --topic eucaim.collection.delivered.v1 --topic eucaim.dlq.anonymisation.v1 --topic eucaim.dlq.metadata.v1 --topic eucaim.dlq.catalogue-sync.v1 --topic eucaim.dlq.materialiser.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:audit --operation Write --topic eucaim.dlq.audit.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:audit --operation Read --group audit

# operator
printf 'SCRAM-SHA-512=password=%s\n' "$(cat "$KAFKA_PASSWORDS_DIR/kafka-operator.password")" > "$scram_dir/operator.properties"
"$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --alter --entity-type users --entity-name operator --add-config-file "$scram_dir/operator.properties"
rm -f "$scram_dir/operator.properties"
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:operator --operation Read --topic eucaim.dlq.anonymisation.v1 --topic eucaim.dlq.metadata.v1 --topic eucaim.dlq.catalogue-sync.v1 --topic eucaim.dlq.materialiser.v1 --topic eucaim.dlq.audit.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:operator --operation Write --topic eucaim.subject.withdrawal-requested.v1 --topic eucaim.access.v1 --topic eucaim.dataset.command.v1 --topic eucaim.study.received.v1 --topic eucaim.study.anonymised.v1 --topic eucaim.study.indexed.v1 --topic eucaim.study.removed.v1 --topic eucaim.study.quarantined.v1 --topic eucaim.collection.updated.v1 --topic eucaim.study.withdrawn.v1 --topic eucaim.study.withheld.v1 --topic eucaim.collection.published.v1 --topic eucaim.collection.delivered.v1 --topic eucaim.dlq.anonymisation.v1 --topic eucaim.dlq.metadata.v1 --topic eucaim.dlq.catalogue-sync.v1 --topic eucaim.dlq.materialiser.v1
"$KAFKA_BIN/kafka-acls.sh" --bootstrap-server "$KAFKA_BOOTSTRAP" --command-config "$KAFKA_COMMAND_CONFIG" --add --allow-principal User:operator --operation Read --group eucaim-node-dlq-replay
