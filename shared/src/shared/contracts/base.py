"""The base of every request model that crosses a boundary (NATS or HTTP)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

NUL = "\x00"


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


class Strict(BaseModel):
    """Unknown fields are an error, not silently dropped; aliased fields also take their names.

    No text may hold the NUL character: PostgreSQL cannot store it, so it is refused here as
    bad input (found by fuzzing: it came back as a 503 "retry" that no retry could cure).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if isinstance(data, dict) and (where := nul_at(data)):
            raise ValueError(f"{where}: text cannot contain the NUL character (\\u0000)")
        return data
