#!/bin/sh
# Each Patchbay service its own PostgreSQL role, owning its own schema and nothing else
# (docs/security.md "PostgreSQL"). Runs once when the database is first made
# (/docker-entrypoint-initdb.d); idempotent: run it again by hand after adding a service or
# rotating a password. The passwords are files named after the roles, in
# $PATCHBAY_ROLE_PASSWORDS (default /run/secrets/postgres-roles), made by
# `python -m devtools.deploy_secrets`.
set -eu
dir="${PATCHBAY_ROLE_PASSWORDS:-/run/secrets/postgres-roles}"
db="${POSTGRES_DB:-patchbay}"
run() { psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "$db" "$@"; }
run -v db="$db" <<'SQL'
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE, TEMPORARY ON DATABASE :"db" FROM PUBLIC;
SQL
for role in customer verification notifier reporting alerts gateway; do
  password=$(cat "$dir/$role")
  run -v db="$db" -v role="$role" -v password="$password" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';
GRANT CONNECT ON DATABASE :"db" TO :"role";
CREATE SCHEMA IF NOT EXISTS :"role" AUTHORIZATION :"role";
ALTER SCHEMA :"role" OWNER TO :"role";
REVOKE ALL ON SCHEMA :"role" FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA :"role" GRANT ALL ON TABLES TO :"role";
ALTER DEFAULT PRIVILEGES IN SCHEMA :"role" GRANT ALL ON SEQUENCES TO :"role";
SQL
done
