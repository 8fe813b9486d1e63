"""Faster COPY encoders for a rebuild's bulk connection: timestamps and money, as PostgreSQL's binary form.

asyncpg's own encoders are general: `timestamptz` compares each value with its infinities first
(each comparison asking the tzinfo for its offset), `numeric` takes each Decimal apart digit by
digit (`as_tuple`, a tuple of digits, a rich comparison per special exponent). In a rebuild's
COPY they were ~30% of the summaries' process (docs/performance.md, "Rebuild per event" and
"Audit and summaries rebuild, third round"). Money repeats (a few thousand distinct charges in
150k call records), so a numeric's binary form is made once per distinct text and then looked up.
"""

from __future__ import annotations

import decimal
import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_HEAD = struct.Struct("!hhHh")  # ndigits, weight, sign, dscale; then ndigits base-10000 digits
_POS, _NEG, _NAN, _PINF, _NINF = 0x0000, 0x4000, 0xC000, 0xD000, 0xF000
_MAX_DSCALE = 0x3FFF
_MEMO_MAX = 100_000
# wide enough for any numeric PostgreSQL sends (131072 digits before the point, 16383 after)
_WIDE = decimal.Context(prec=131072 + 16383, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _micros(value: datetime) -> tuple[int]:
    if value.tzinfo is None:
        value = value.astimezone(UTC)  # a naive time is local, as asyncpg's own encoder takes it
    return ((value - _PG_EPOCH) // _MICROSECOND,)


def numeric_bytes(value: Decimal) -> bytes:
    """A Decimal as PostgreSQL's binary numeric (as asyncpg encodes it: the scale kept, `1.50` != `1.5`)."""
    sign, digits, exponent = value.as_tuple()
    if exponent in ("n", "N"):
        return _HEAD.pack(0, 0, _NAN, 0)
    if exponent == "F":
        return _HEAD.pack(0, 0, _NINF if sign else _PINF, 0)
    assert isinstance(exponent, int)
    if -exponent > _MAX_DSCALE:
        raise ValueError(f"cannot encode {value} as numeric: its exponent is too small")
    dweight = len(digits) + exponent - 1  # the power of ten of the first digit
    weight = (dweight + 4) // 4 - 1 if dweight >= 0 else -((-dweight - 1) // 4 + 1)
    padding = (weight + 1) * 4 - (dweight + 1)  # zeros before the first digit in its group
    count = (len(digits) + padding + 3) // 4
    padded = (0,) * padding + digits + (0, 0, 0)
    groups = [padded[j] * 1000 + padded[j + 1] * 100 + padded[j + 2] * 10 + padded[j + 3]
              for j in range(0, count * 4, 4)]
    if count > 0xFFFF or weight > 0x7FFF:
        raise ValueError(f"cannot encode {value} as numeric: too many digits")
    head = _HEAD.pack(count, weight, _NEG if sign else _POS, max(-exponent, 0))
    return head + struct.pack(f"!{count}H", *groups)


def numeric_of(data: bytes) -> Decimal:
    """PostgreSQL's binary numeric as a Decimal (with its scale)."""
    count, weight, sign, dscale = _HEAD.unpack_from(data)
    if sign in (_NAN, _PINF, _NINF):
        return Decimal({_NAN: "NaN", _PINF: "Infinity", _NINF: "-Infinity"}[sign])
    groups = struct.unpack_from(f"!{count}H", data, _HEAD.size)
    digits = "".join(f"{g:04d}" for g in groups) or "0"
    value = Decimal(f"{'-' if sign == _NEG else ''}{digits}E{(weight + 1 - count) * 4}")
    return value.quantize(Decimal(f"1E-{dscale}"), context=_WIDE)


class _NumericMemo(dict[str, bytes]):
    """The text of a Decimal (it keeps the scale) -> its binary form, made on first sight; bounded."""

    def __missing__(self, text: str) -> bytes:
        if len(self) >= _MEMO_MAX:
            self.clear()
        data = self[text] = numeric_bytes(Decimal(text))
        return data


def _numeric_encoder() -> object:
    memo = _NumericMemo()

    def encode(value: Decimal) -> bytes:
        return memo[str(value)]

    return encode


async def bulk_codecs(conn: asyncpg.Connection) -> None:
    """timestamptz as its binary microseconds from one subtraction (COPY: 0.37 µs a value against
    0.72 for asyncpg's encoder), numeric from a memo of binary forms."""
    await conn.set_type_codec("timestamptz", schema="pg_catalog", format="tuple", encoder=_micros,
                              decoder=lambda t: _PG_EPOCH + timedelta(microseconds=t[0]))
    await conn.set_type_codec("numeric", schema="pg_catalog", format="binary", encoder=_numeric_encoder(),
                              decoder=numeric_of)


async def reset_bulk_codecs(conn: asyncpg.Connection) -> None:
    """asyncpg's own codecs again (the connection goes back to a pool)."""
    await conn.reset_type_codec("timestamptz", schema="pg_catalog")
    await conn.reset_type_codec("numeric", schema="pg_catalog")
