"""The event envelope: what every event on every stream carries around its data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.ids import new_id


class Actor(BaseModel):
    """Who caused a change: an operator token, a portal contact or the system itself."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["operator", "portal", "system"] = "system"
    id: str | None = None
    name: str = "system"
    ip: str | None = None


SYSTEM = Actor()


class Metadata(BaseModel):
    """Context of a change, kept beside the event data."""

    model_config = ConfigDict(frozen=True)

    actor: Actor = SYSTEM
    correlation_id: str | None = None
    causation_id: str | None = None
    command_id: str | None = None
    reason: str | None = None


class EventEnvelope(BaseModel):
    """One fact about one stream, at one version."""

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=new_id)
    type: str
    schema_version: int = 1
    category: str
    stream_id: str
    version: int
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    metadata: Metadata = Field(default_factory=Metadata)
    data: dict[str, Any] = Field(default_factory=dict)
    position: int | None = None

    @property
    def subject(self) -> str:
        """The JetStream subject: `events.<category>.<stream_id>.<Type>`."""
        return f"events.{self.category}.{self.stream_id}.{self.type}"
