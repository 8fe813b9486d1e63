"""The ledger rebuild's COPY text: the fast whole-batch path and the escaped one read back the same."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from customer.projections.ledger_tables import copy_text

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)


def _unescape(field: str) -> str:
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\":
            out.append({"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}[field[i + 1]])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _read_back(text: bytes) -> list[tuple[str, str, datetime, Decimal, Decimal, Decimal]]:
    """What PostgreSQL's COPY text reader makes of the bytes, for these column types."""
    rows = []
    for line in text.decode().split("\n")[:-1]:
        c, k, t, a, x, w = line.split("\t")
        rows.append((_unescape(c), _unescape(k), datetime.fromisoformat(t), Decimal(a), Decimal(x), Decimal(w)))
    return rows


def test_plain_rows_come_out_as_the_json_path_writes_them_and_read_back_equal() -> None:
    rng = random.Random(7)
    rows = [(f"call-{i}", f"cust-{i % 7}", T0 + timedelta(microseconds=rng.randint(0, 10**12)),
             Decimal(rng.randint(1, 10**6)) / 10000, Decimal(rng.choice(["19", "7.5", "0"])),
             Decimal(rng.randint(1, 10**8)) / 10**6) for i in range(500)]
    rows.append(("call-whole-second", "cust-ü", T0.astimezone(timezone(timedelta(hours=2))),
                 Decimal("0"), Decimal("0.00"), Decimal("12")))
    text = copy_text(rows)
    assert text.startswith(b"call-0\tcust-0\t2026-") and b"Z\t" in text and b"+02:00\t" in text
    assert _read_back(text) == rows
    assert copy_text([]) == b""


def test_values_that_need_an_escape_or_have_an_exponent_are_written_row_by_row() -> None:
    odd = [("odd\t\\id\n\r", 'quote"d', T0, Decimal("1E+1"), Decimal("19"), Decimal("11.9")),
           ("plain", "cust", T0, Decimal("0.1"), Decimal("1E-2"), Decimal("0.1"))]
    for row in odd:
        text = copy_text([row, ("next", "cust", T0, Decimal("1"), Decimal("19"), Decimal("1.19"))])
        assert b"E+" not in text and b"E-" not in text and text.count(b"\n") == 2
        assert _read_back(text)[0] == row
    assert copy_text(odd[:1]).startswith(b"odd\\t\\\\id\\n\\r\tquote\"d\t")
