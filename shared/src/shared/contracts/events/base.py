"""Typed events: the base model, the personal-data mark, and the registry of names and versions.

Every event type is a frozen pydantic model registered under its wire name (the envelope's
`type`) with its current schema version. Its fields carry JSON-mode values (timestamps as ISO
text, money as decimal text) so that `dump` gives back exactly the data keys and values that are
stored in PostgreSQL and published on NATS. Old versions are brought up to date on read by the
registered upcasters, never rewritten. Unknown keys are ignored (`extra="ignore"`): a consumer
that is older than the producer keeps reading when a field is added.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, get_args, get_origin, get_type_hints

from pydantic import BaseModel, ConfigDict
from typing_extensions import is_typeddict

from shared.envelope import EventEnvelope

Data = dict[str, Any]
Upcaster = Callable[[Data], Data]
E = TypeVar("E", bound="Event")


@dataclass(frozen=True)
class Personal:
    """Marks a field as personal data (product.md section 15 encrypts what carries this mark)."""


PERSONAL = Personal()


@dataclass(frozen=True)
class PersonalKeys:
    """Marks a change map: the entries under these keys (dotted for nested values) are personal."""

    keys: tuple[str, ...]

    def __init__(self, *keys: str) -> None:
        object.__setattr__(self, "keys", keys)


class Event(BaseModel):
    """One fact; its class says what happened, its fields the JSON-ready data."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1


class UnknownEvent(LookupError):
    """No event type of this name is registered."""


class EventRegistry:
    """Wire name -> event class, its schema version and its upcasters."""

    def __init__(self) -> None:
        self._types: dict[str, type[Event]] = {}
        self._upcasters: dict[str, dict[int, Upcaster]] = {}

    def register(
        self, name: str, *, version: int = 1, upcasters: dict[int, Upcaster] | None = None
    ) -> Callable[[type[E]], type[E]]:
        """Class decorator: register under `name`; `upcasters[v]` turns v data into v+1 data."""
        steps = dict(upcasters or {})
        missing = [v for v in range(1, version) if v not in steps]
        if missing:
            raise ValueError(f"{name} v{version} has no upcaster from version(s) {missing}")

        def add(cls: type[E]) -> type[E]:
            if name in self._types and self._types[name] is not cls:
                raise ValueError(f"event type {name} is registered twice")
            cls.TYPE, cls.VERSION = name, version
            self._types[name] = cls
            self._upcasters[name] = steps
            return cls

        return add

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[type[Event]]:
        return iter(self._types.values())

    def lookup(self, name: str) -> type[Event]:
        """The class registered under `name`."""
        try:
            return self._types[name]
        except KeyError:
            raise UnknownEvent(f"no event type {name!r} is registered") from None

    def version_of(self, name: str) -> int:
        """The schema version written today for `name`."""
        return self.lookup(name).VERSION

    def upcast(self, name: str, version: int, data: Data) -> Data:
        """Data of an older schema version brought up to the current one."""
        cls = self.lookup(name)
        steps = self._upcasters[name]
        while version < cls.VERSION:
            data = steps[version](dict(data))
            version += 1
        return data

    def load(self, name: str, version: int, data: Data) -> Event:
        """(type, schema version, data) -> the typed event, upcast and validated."""
        cls = self.lookup(name)
        if version != cls.VERSION:
            data = self.upcast(name, version, data)
        return cls.model_validate(data)

    def decode(self, envelope: Any) -> Event | None:
        """An envelope's typed event, or None when its type is not registered (a later feature)."""
        if envelope.type not in self._types:
            return None
        return self.load(envelope.type, envelope.schema_version, envelope.data)

    @staticmethod
    def dump(event: Event) -> tuple[str, int, Data]:
        """A typed event -> (type, schema version, JSON-ready data), as stored and published."""
        return event.TYPE, event.VERSION, event.model_dump(mode="json", warnings=False)

    def envelope(self, event: Event, **fields: Any) -> EventEnvelope:
        """The envelope of a typed event; `fields` are the envelope's other fields (stream, version...)."""
        name, version, data = self.dump(event)
        return EventEnvelope(type=name, schema_version=version, data=data, **fields)


REGISTRY = EventRegistry()
register = REGISTRY.register


def personal_fields(model: type[Any]) -> set[str]:
    """The dotted paths of the personal-data fields of an event class (or nested TypedDict)."""
    return set(_personal(model, ""))


def _personal(model: type[Any], prefix: str) -> Iterator[str]:
    hints = get_type_hints(model, include_extras=True)
    names = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else hints
    for name in names:
        path = f"{prefix}{name}"
        for mark in getattr(hints[name], "__metadata__", ()):
            if isinstance(mark, Personal):
                yield path
            elif isinstance(mark, PersonalKeys):
                yield from (f"{path}.{key}" for key in mark.keys)
        yield from (p for inner in _nested(hints[name]) for p in _personal(inner, f"{path}."))


def _nested(hint: Any) -> Iterator[type[Any]]:
    """The TypedDicts and models inside a field's type (through Annotated, Optional, list)."""
    if is_typeddict(hint) or (isinstance(hint, type) and issubclass(hint, BaseModel)):
        yield hint
        return
    if get_origin(hint) is dict:
        return  # a map's values are marked on the map itself (PersonalKeys)
    for arg in get_args(hint):
        if not isinstance(arg, (Personal, PersonalKeys)):
            yield from _nested(arg)
