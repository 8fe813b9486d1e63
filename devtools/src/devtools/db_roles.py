"""PostgreSQL least privilege: each service its own role, owning its own schema and nothing else.

`make run` provisions the roles on the embedded server (as the `postgres` superuser) and gives each
service a database URL of its own role; deploy/ does the same with passwords
(deploy/postgres/roles.sh). A role may connect to the database and use its schema; it cannot
create schemas, use `public`, or read another service's tables.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import asyncpg

SERVICE_SCHEMAS = {"customer": "customer", "verification": "verification", "notifier": "notifier",
                   "reporting": "reporting", "alerts": "alerts", "gateway": "gateway"}

_OWN_EVERYTHING = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             -- an identity or serial sequence follows its table (and cannot be altered alone)
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
  LOOP
    EXECUTE format('ALTER %s "{schema}".%I OWNER TO "{role}"',
                   CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                  WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                                  ELSE 'TABLE' END, r.relname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = '{schema}'
  LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO "{role}"', r.f);
  END LOOP;
END $$;
"""


def role_url(admin_url: str, role: str, password: str | None = None) -> str:
    """The admin URL with the service's role as its user."""
    parts = urlsplit(admin_url)
    host = parts.hostname or ""
    netloc = f"{role}{':' + password if password else ''}@{host}{f':{parts.port}' if parts.port else ''}"
    return urlunsplit(parts._replace(netloc=netloc))


async def provision_roles(admin_url: str) -> dict[str, str]:
    """Make each service's role and schema (idempotent; an older data dir's objects change owner).

    Returns service -> its database URL.
    """
    conn = await asyncpg.connect(admin_url)
    try:
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await conn.execute(f'REVOKE CREATE, TEMPORARY ON DATABASE "{database}" FROM PUBLIC')
        for role, schema in SERVICE_SCHEMAS.items():
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(f'CREATE ROLE "{role}" LOGIN')
            await conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION "{role}"')
            await conn.execute(f'ALTER SCHEMA "{schema}" OWNER TO "{role}"')
            await conn.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC')
            # what the operator's tools make there as the admin (a rebuild's fresh tables) is the
            # service's to use too
            for kind in ("TABLES", "SEQUENCES"):
                await conn.execute(
                    f'ALTER DEFAULT PRIVILEGES IN SCHEMA "{schema}" GRANT ALL ON {kind} TO "{role}"')
            await conn.execute(_OWN_EVERYTHING.format(schema=schema, role=role))
    finally:
        await conn.close()
    return {service: role_url(admin_url, service) for service in SERVICE_SCHEMAS}
