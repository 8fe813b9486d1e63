"""The base of every request model that crosses a boundary (NATS or HTTP)."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

NUL = "\x00"
# the validation context of a JSON text that cannot hold a NUL: the walk is skipped
NUL_FREE: dict[str, bool] = {"nul_free": True}


def json_may_hold_nul(text: str | bytes | bytearray) -> bool:
    """Whether a JSON text could decode to a NUL anywhere: only as the escape \\u0000 (or a raw NUL)."""
    if isinstance(text, str):
        return "\\u0000" in text or NUL in text
    return b"\\u0000" in text or b"\x00" in text


def nul_at(value: Any, path: str = "") -> str | None:
    """Where a text (or a key) in `value` holds the NUL character, if anywhere: `a.b[2]`, or None."""
    if isinstance(value, str):
        return path or "(value)" if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            shown = str(key).replace(NUL, "\\u0000")  # the answer must not carry the NUL either
            here = f"{path}.{shown}" if path else shown
            if isinstance(key, str) and NUL in key:
                return here
            if found := nul_at(item, here):
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            if found := nul_at(item, f"{path}[{i}]"):
                return found
    return None


def has_nul(value: Any) -> bool:
    """Whether any text (or key) in `value` holds the NUL character: `nul_at` without building paths."""
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        for key, item in value.items():
            if (isinstance(key, str) and NUL in key) or has_nul(item):
                return True
    elif isinstance(value, list | tuple):
        for item in value:
            if has_nul(item):
                return True
    return False


class Strict(BaseModel):
    """Unknown fields are an error, not silently dropped; aliased fields also take their names.

    No text may hold the NUL character: PostgreSQL cannot store it, so it is refused here as
    bad input (found by fuzzing: it came back as a 503 "retry" that no retry could cure).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @classmethod
    def model_validate_json(
        cls, json_data: str | bytes | bytearray, *, context: Any | None = None, **options: Any
    ) -> Self:
        """As pydantic's; a text without the escape `\\u0000` is not walked for NULs."""
        if context is None and not json_may_hold_nul(json_data):
            context = NUL_FREE
        return super().model_validate_json(json_data, context=context, **options)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any, info: ValidationInfo) -> Any:
        if info.context is NUL_FREE:
            return data
        # every request is walked (nested Strict models again): the cheap walk first, the path
        # only for the refusal (the path-building walk was ~60% of a create's validation)
        if isinstance(data, dict) and has_nul(data) and (where := nul_at(data)):
            raise ValueError(f"{where}: text cannot contain the NUL character (\\u0000)")
        return data
