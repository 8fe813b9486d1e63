"""PostgreSQL least privilege: each service's role reaches its own schema only."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from devtools.db_roles import SERVICE_SCHEMAS, provision_roles
from devtools.testing.plugin import MakeDatabase
from shared.migrations import migrate

pytestmark = pytest.mark.servers


async def test_each_service_role_owns_its_schema_and_reaches_no_other(
    make_database: MakeDatabase, tmp_path: Path,
) -> None:
    admin_url = await make_database()
    admin = await asyncpg.connect(admin_url)
    await admin.execute("CREATE SCHEMA gateway; CREATE TABLE gateway.tokens (id int)")  # an older data dir's
    await admin.close()
    urls = await provision_roles(admin_url)
    assert await provision_roles(admin_url) == urls  # idempotent
    assert set(urls) == set(SERVICE_SCHEMAS)
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);\n")
    assert await migrate(urls["customer"], "customer", tmp_path) == ["0001_things.sql"]
    customer = await asyncpg.connect(urls["customer"])
    gateway = await asyncpg.connect(urls["gateway"])
    try:
        assert await customer.fetchval("SELECT current_user") == "customer"
        assert await customer.fetchval("SELECT count(*) FROM customer.things") == 0
        for forbidden in ("SELECT * FROM gateway.tokens", "CREATE SCHEMA stolen",
                          "CREATE TABLE public.stolen (id int)", "CREATE TABLE gateway.stolen (id int)"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await customer.execute(forbidden)
        # the table made before the roles existed is now its service's own
        assert await gateway.fetchval("SELECT count(*) FROM gateway.tokens") == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await gateway.execute("SELECT * FROM customer.things")
    finally:
        await customer.close()
        await gateway.close()
