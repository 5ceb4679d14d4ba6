#!/usr/bin/env sh
# Creates the secrets docker-compose.yml reads (once; existing files are kept).
set -eu
dir=$(dirname "$0")/secrets
mkdir -p "$dir"
chmod 0750 "$dir"
# Readable by the owner and one group (0640): compose bind-mounts each file with this owner and mode, and the
# containers' users (uid 10001 for the node's image) read it through that group (group_add in docker-compose.yml).
umask 027
[ -s "$dir/hmac.key" ] || head -c 32 /dev/urandom > "$dir/hmac.key"
# One user and password per Orthanc: the research credential never opens the clinical Orthanc.
for instance in clinical research; do
  [ -s "$dir/orthanc-$instance-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/orthanc-$instance-password"
  [ -s "$dir/orthanc-$instance-users.json" ] ||
    printf '{"eucaim-%s": "%s"}\n' "$instance" "$(cat "$dir/orthanc-$instance-password")" > "$dir/orthanc-$instance-users.json"
done
[ -s "$dir/audit-signing.key" ] || openssl genpkey -algorithm ed25519 -out "$dir/audit-signing.key"
[ -s "$dir/search-tokens" ] || printf 'local:%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '/+=')" > "$dir/search-tokens"
# MongoDB: the root user and one user per principal (eucaim_node.store.access; tests/test_compose.py keeps the
# list in step), a CA and the server certificate of mongodb (also valid for localhost: the healthcheck).
for principal in root reception anonymisation metadata catalogue-sync materialiser audit jobs cli; do
  [ -s "$dir/mongo-$principal-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/mongo-$principal-password"
done
if [ ! -s "$dir/ca.pem" ] || [ ! -s "$dir/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=eucaim-node compose CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
fi
if [ ! -s "$dir/mongodb-tls.pem" ]; then
  printf 'subjectAltName=DNS:mongodb,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$dir/mongodb.ext"
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mongodb" \
    -keyout "$dir/mongodb.key" -out "$dir/mongodb.csr" 2>/dev/null
  openssl x509 -req -in "$dir/mongodb.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 365 -extfile "$dir/mongodb.ext" -out "$dir/mongodb.crt" 2>/dev/null
  cat "$dir/mongodb.crt" "$dir/mongodb.key" > "$dir/mongodb-tls.pem"
  rm -f "$dir/mongodb.csr" "$dir/mongodb.ext" "$dir/mongodb.key"
fi
# Kafka: one SCRAM password per principal and the broker's certificate from the same CA (1 year; docs/operations.md).
for kafka_principal in operator reception anonymisation metadata catalogue-sync audit materialiser jobs; do
  [ -s "$dir/kafka-$kafka_principal.password" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$dir/kafka-$kafka_principal.password"
done
if [ ! -s "$dir/kafka-broker.pem" ]; then
  key=$(mktemp) csr=$(mktemp) crt=$(mktemp) ext=$(mktemp)
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key"
  openssl req -new -key "$key" -subj "/CN=eucaim-kafka-broker" -out "$csr"
  printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:kafka,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > "$ext"
  openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 365 \
    -extfile "$ext" -out "$crt"
  cat "$key" "$crt" "$dir/ca.pem" > "$dir/kafka-broker.pem"
  rm -f "$key" "$csr" "$crt" "$ext" "$dir/ca.srl"
fi
[ -s "$dir/witness.key" ] || openssl genpkey -algorithm ed25519 -out "$dir/witness.key"
[ -s "$dir/witness-token" ] || head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > "$dir/witness-token"

# Signed-note verifier keys (c2sp.org/signed-note): name+hex(SHA-256(name "\n" type key)[:4])+base64(type key);
# type 0x01 for the ledger's key (the witness's logs file), 0x04 for the witness's cosignatures.
raw_public() { openssl pkey -in "$1" -pubout -outform DER | tail -c 32; }
vkey() {  # vkey NAME TYPE-OCTAL KEYFILE
  id=$({ printf '%s\n' "$1"; printf "\\$2"; raw_public "$3"; } | openssl dgst -sha256 -binary | head -c 4 | od -An -tx1 | tr -d ' \n')
  printf '%s+%s+%s\n' "$1" "$id" "$({ printf "\\$2"; raw_public "$3"; } | base64 | tr -d '\n')"
}
origin=${EUCAIM_AUDIT_LOG_ORIGIN:-eucaim-node/audit}
[ -s "$dir/witness.vkey" ] || vkey witness.eucaim-node 004 "$dir/witness.key" > "$dir/witness.vkey"
[ -s "$dir/witness-logs.txt" ] || vkey "$origin" 001 "$dir/audit-signing.key" > "$dir/witness-logs.txt"
[ -s "$dir/audit-log.pub" ] || openssl pkey -in "$dir/audit-signing.key" -pubout -out "$dir/audit-log.pub"
# The group the containers join to read the files: 10001 (the image's own group) when run as root, else yours.
if [ "$(id -u)" = 0 ]; then gid=10001; chgrp -R "$gid" "$dir"; else gid=$(id -g); fi
chmod -R g+rX,o-rwx "$dir"
env_file=$(dirname "$0")/../../.env
grep -qs '^EUCAIM_SECRETS_GID=' "$env_file" || printf 'EUCAIM_SECRETS_GID=%s\n' "$gid" >> "$env_file"
echo "secrets in $dir (keep hmac.key: pseudonyms depend on it; keep audit-signing.key: signed heads depend on it)"
