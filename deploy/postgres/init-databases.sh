#!/bin/sh
# Runs once, on the first start of an empty PostgreSQL volume (docker-entrypoint-initdb.d):
# one role and one database per service, each role owning only its own database, so a leaked
# media credential opens nothing of auth's. Passwords come from the mounted secrets.
set -eu

# Overridable so the script can be exercised outside the container (tests/gateway/test_deploy.py).
services=${NATOMEDIA_DATABASES:-auth media news}
secrets_dir=${NATOMEDIA_SECRETS_DIR:-/run/secrets}

for service in $services; do
    password_file="$secrets_dir/${service}_db_password"
    if [ ! -r "$password_file" ]; then
        echo "init-databases: missing $password_file" >&2
        exit 1
    fi
    password=$(cat "$password_file")
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
        --set=service="$service" --set=password="$password" <<'SQL'
CREATE ROLE :"service" LOGIN PASSWORD :'password';
CREATE DATABASE :"service" OWNER :"service";
REVOKE ALL ON DATABASE :"service" FROM PUBLIC;
SQL
    # PostgreSQL 15+ no longer lets every role create in `public`; the owner needs it for Alembic.
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$service" \
        --set=service="$service" <<'SQL'
ALTER SCHEMA public OWNER TO :"service";
SQL
done
