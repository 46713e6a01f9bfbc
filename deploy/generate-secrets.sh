#!/bin/sh
# Creates the secrets docker-compose.yml mounts, once, under deploy/secrets/ (never committed,
# never copied into an image). Existing files are kept, so running it again changes nothing.
#   deploy/generate-secrets.sh [DIR]
set -eu

dir=${1:-$(dirname "$0")/secrets}
mkdir -p "$dir"
chmod 700 "$dir"
umask 022  # the files are bind-mounted into containers whose users are not ours; the dir guards them

random() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

write() {
    if [ ! -s "$dir/$1" ]; then
        printf '%s' "$2" > "$dir/$1"
        echo "created $dir/$1"
    fi
}

write postgres_password "$(random)"
for service in auth media news; do
    write "${service}_db_password" "$(random)"
    password=$(cat "$dir/${service}_db_password")
    write "${service}_database_url" "postgresql+asyncpg://${service}:${password}@postgres:5432/${service}"
done
write auth_code_hash_key "$(random)"
write media_signing_secret "$(random)"
if [ ! -s "$dir/auth_signing_key.pem" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/auth_signing_key.pem"
    chmod 644 "$dir/auth_signing_key.pem"
    echo "created $dir/auth_signing_key.pem"
fi
