"""Reusable validated field types (names, money, codes)."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from typing import Annotated, Any

import pycountry
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
)

TOML_MAX_BYTES = 64 * 1024


def _currency(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise ValueError(f"'{value}' is not an ISO 4217 currency code (e.g. USD, EUR, GBP)")
    return code


def _country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"'{value}' is not an ISO 3166-1 alpha-2 country code (e.g. US, GB, DE)")
    return code


def country_code(text: str) -> str:
    """A country typed by a person (`Germany`, `DEU`, `de`) as its alpha-2 code; else the text as given."""
    value = text.strip()
    if len(value) <= 2:
        return value
    try:
        return str(pycountry.countries.lookup(value).alpha_2)
    except LookupError:
        return value  # the API refuses it, saying what a country code is


_URL = TypeAdapter(HttpUrl)


def _website(value: str) -> str:
    value = value.strip()
    _URL.validate_python(value)
    if not value.lower().startswith(("http://", "https://")):
        raise ValueError("website must be an http:// or https:// URL")
    return value


def parse_toml(text: str) -> dict[str, Any]:
    """Parse TOML text; the error names the line and column."""
    if len(text.encode()) > TOML_MAX_BYTES:
        raise ValueError(f"config_toml is larger than {TOML_MAX_BYTES} bytes")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config_toml is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level: thousands of `[` are an attack
        raise ValueError("config_toml is nested too deeply") from None


def _toml(value: str) -> str:
    parse_toml(value)
    return value


def _no_exponent(value: Any) -> Any:
    if isinstance(value, str) and ("e" in value.lower()):
        raise ValueError("numbers are written in plain decimal notation, not scientific (1e3)")
    if isinstance(value, float):
        return str(value)
    return value


def _plain_int(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        if "e" in text.lower():
            raise ValueError("numbers are written in plain decimal notation, not scientific (1e3)")
        if not text.lstrip("+-").isdigit() or not text.isascii():
            raise ValueError("must be a whole number written with digits only (e.g. 30)")
        return int(text)
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("must be a whole number")
    return value


def _normalize(value: Decimal) -> Decimal:
    # one spelling per number, so "10.50" and "10.5" are the same value in events and diffs
    return Decimal(format(value.normalize(), "f")) if value else Decimal(0)


def _tag(value: str) -> str:
    if ";" in value:  # the CSV export joins tags with ';': one would come back as two
        raise ValueError("a tag cannot contain ';' (it separates tags in CSV files)")
    return value


def _tags(value: list[str]) -> list[str]:
    return sorted({t.strip() for t in value if t.strip()})


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]
CountryCode = Annotated[str, AfterValidator(_country)]
WebUrl = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_website)]
TomlText = Annotated[str, AfterValidator(_toml)]
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40), AfterValidator(_tag)
]
Tags = Annotated[list[Tag], Field(max_length=50), AfterValidator(_tags)]
# money is documented as what validators and client generators read: a decimal string with a
# pattern (a JSON number is accepted too); pydantic would write `max_digits`, `ge`, `le`, which
# JSON Schema does not know
_DECIMALS = r"(\.\d{1,4})?$"


def _decimal_doc(pattern: str, description: str) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description,
                           "examples": ["12.5"]})


Money = Annotated[
    Decimal,
    BeforeValidator(_no_exponent),
    Field(max_digits=18, decimal_places=4, allow_inf_nan=False),
    AfterValidator(_normalize),
    _decimal_doc(r"^-?\d{1,14}" + _DECIMALS, "a decimal: up to 14 digits before the point, 4 after"),
]
NonNegativeMoney = Annotated[
    Money, Field(ge=0), _decimal_doc(r"^\d{1,14}" + _DECIMALS, "a decimal, 0 or more, 4 places at most"),
]
# a count (channels): plain digits only, so "1e3", "1.0" and "1_000" are refused as in money
Count = Annotated[int, Field(ge=0, le=2_000_000_000), BeforeValidator(_plain_int)]
# an internal telephone number (number blocks): plain digits
InternalNumber = Annotated[int, Field(ge=0, le=10**15), BeforeValidator(_plain_int)]
Percent = Annotated[
    Money, Field(ge=0, le=100),
    _decimal_doc(r"^(100(\.0{1,4})?|\d{1,2}" + _DECIMALS[:-1] + ")$", "a percentage, 0 to 100, 4 places"),
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
Notes = Annotated[str, StringConstraints(max_length=20_000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
