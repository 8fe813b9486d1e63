"""The bulk connection's own encoders write what asyncpg's would, value for value (PostgreSQL reads both)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from reporting.projections.bulk_codecs import bulk_codecs, numeric_bytes, numeric_of, reset_bulk_codecs

pytestmark = pytest.mark.servers

FIXED = ["0", "-0", "0.0000", "1.5", "1.50", "-1.50", "0.0001", "0.00001", "12345.6789", "9999", "10000",
         "100000000", "1E+10", "1.2E+3", "1E-20", "-0.000123400", "123456789012345678901234567890.123456789",
         "NaN", "Infinity", "-Infinity", "0.1234", "99999999.9999"]


def values() -> list[Decimal]:
    """Fixed edge cases and random money of every scale, sign and size."""
    rng = random.Random(21)
    out = [Decimal(v) for v in FIXED]
    for _ in range(2000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30)))
        out.append(Decimal(f"{rng.choice(['', '-'])}{digits}E{rng.randint(-25, 12)}"))
        out.append(Decimal(rng.randrange(0, 10**8)).scaleb(-rng.randint(0, 8)))
    return out


@pytest.fixture
async def conn(make_database: Any) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(await make_database())
    try:
        yield c
    finally:
        await c.close()


def test_the_binary_numeric_reads_back_as_the_same_decimal_with_its_scale() -> None:
    for value in values():
        back = numeric_of(numeric_bytes(value))
        if not value.is_finite():
            assert str(back) == str(value)
            continue
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        # numeric keeps the digits after the point (1.50 stays 1.50); 1E+10 has none
        assert back == value and back.as_tuple().exponent == min(exponent, 0), value


async def test_copy_with_the_bulk_codecs_stores_what_asyncpgs_encoders_store(conn: asyncpg.Connection) -> None:
    money = values()
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    rng = random.Random(3)
    times = [datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(-6 * 10**16, 6 * 10**16))
             for _ in range(len(money))]
    rows = [(i, m, t.astimezone(rng.choice(zones))) for i, (m, t) in enumerate(zip(money, times, strict=True))]
    await conn.execute("CREATE TABLE theirs (i int, m numeric, t timestamptz); CREATE TABLE ours (LIKE theirs)")
    await conn.copy_records_to_table("theirs", records=rows)
    await bulk_codecs(conn)
    await conn.copy_records_to_table("ours", records=rows)
    await conn.copy_records_to_table("ours", records=rows)  # the second time from the memo
    read = await conn.fetch("SELECT DISTINCT ON (i) i, m, t FROM ours ORDER BY i")
    await reset_bulk_codecs(conn)
    differ = await conn.fetch("SELECT o.i, o.m::text AS ours, t.m::text AS theirs FROM ours o JOIN theirs t"
                              " USING (i) WHERE o.m::text <> t.m::text OR o.t <> t.t")
    assert differ == []
    assert await conn.fetchval("SELECT count(*) FROM ours") == 2 * len(rows)
    # and what the bulk connection reads back is what was written
    for (i, m, t), r in zip(rows, read, strict=True):
        assert r["i"] == i
        assert r["t"] == t
        assert (r["m"] == m and r["m"].as_tuple().exponent == min(m.as_tuple().exponent, 0)  # type: ignore[operator]
                if m.is_finite() else str(r["m"]) == str(m))
