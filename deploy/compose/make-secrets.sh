#!/usr/bin/env sh
# Creates the secrets docker-compose.yml reads (once; existing files are kept).
set -eu
dir=$(dirname "$0")/secrets
mkdir -p "$dir"
umask 077
[ -s "$dir/hmac.key" ] || head -c 32 /dev/urandom > "$dir/hmac.key"
# One user and password per Orthanc: the research credential never opens the clinical Orthanc.
for instance in clinical research; do
  [ -s "$dir/orthanc-$instance-password" ] || head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$dir/orthanc-$instance-password"
  [ -s "$dir/orthanc-$instance-users.json" ] ||
    printf '{"eucaim-%s": "%s"}\n' "$instance" "$(cat "$dir/orthanc-$instance-password")" > "$dir/orthanc-$instance-users.json"
done
[ -s "$dir/audit-signing.key" ] || openssl genpkey -algorithm ed25519 -out "$dir/audit-signing.key"
[ -s "$dir/search-tokens" ] || printf 'local:%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '/+=')" > "$dir/search-tokens"
echo "secrets in $dir (keep hmac.key: pseudonyms depend on it; keep audit-signing.key: signed heads depend on it)"
