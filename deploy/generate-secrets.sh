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
# The object store's keys: media reads them as an AWS credentials file, SeaweedFS as its identity.
write s3_access_key "natomedia-$(random | cut -c1-16)"
write s3_secret_key "$(random)"
access_key=$(cat "$dir/s3_access_key")
secret_key=$(cat "$dir/s3_secret_key")
write s3_credentials "[default]
aws_access_key_id = $access_key
aws_secret_access_key = $secret_key
"
write s3_config.json "{\"identities\": [{\"name\": \"natomedia\", \"credentials\": [{\"accessKey\": \"$access_key\", \"secretKey\": \"$secret_key\"}], \"actions\": [\"Admin\", \"Read\", \"Write\", \"List\", \"Tagging\"]}]}"
if [ ! -s "$dir/auth_signing_key.pem" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/auth_signing_key.pem"
    chmod 644 "$dir/auth_signing_key.pem"
    echo "created $dir/auth_signing_key.pem"
fi
