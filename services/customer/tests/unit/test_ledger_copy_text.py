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


def test_values_that_need_an_escape_are_written_row_by_row() -> None:
    odd = ("odd\t\\id\n\r", 'quote"d', T0, Decimal("1E+1"), Decimal("19"), Decimal("11.9"))
    text = copy_text([odd, ("next", "cust", T0, Decimal("1"), Decimal("19"), Decimal("1.19"))])
    assert text.startswith(b"odd\\t\\\\id\\n\\r\tquote\"d\t2026-10-01T12:00:00+00:00\t10\t19\t11.9\n")
    assert text.count(b"\n") == 2 and _read_back(text)[0] == odd


def test_numbers_in_exponent_form_stay_on_the_fast_path() -> None:
    """PostgreSQL reads `0E-7` as 0.0000000 and `1E+1` as 10, as the plain forms (checked against
    a real server when this was written; the rebuild's integration test compares every row)."""
    rows = [("c1", "k", T0, Decimal("0.0000"), Decimal("7.5"), Decimal("0.0000") * Decimal("1.075")),
            ("c2", "k", T0, Decimal("1E+1"), Decimal("19"), Decimal("11.9"))]
    text = copy_text(rows)
    assert text == b"c1\tk\t2026-10-01T12:00:00Z\t0.0000\t7.5\t0E-7\nc2\tk\t2026-10-01T12:00:00Z\t1E+1\t19\t11.9\n"
    assert _read_back(text) == rows
