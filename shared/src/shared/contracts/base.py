"""The base of every request model that crosses a boundary (NATS or HTTP)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown fields are an error, not silently dropped; aliased fields also take their names."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
