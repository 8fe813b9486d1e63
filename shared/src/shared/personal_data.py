"""Personal data in events, encrypted field by field with a data key of its subject (section 15).

A marked field (`personal_fields` of its event class) is stored as `enc:v1:<key id>:<base64 of
nonce + AES-GCM ciphertext>`; a list of texts (the IP whitelist) item by item, None as None, so
an event with ciphertext still validates as its model. The subject of an event's personal data
is its contact when it names one, else its customer (`subject_of`). Reading is generic
(`reveal`): every such string anywhere in a JSON value is replaced by its plaintext, or by
`"[erased]"` when its key was destroyed. Keys come from a `KeyProvider` (the customer service's
key table; elsewhere `shared.data_keys.DataKeyClient`, asking the customer service over NATS).
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.contracts.events.base import REGISTRY, personal_fields
from shared.envelope import EventEnvelope

PREFIX = "enc:v1:"
ERASED = "[erased]"
NONCE_BYTES = 12


def customer_subject(customer_id: object) -> str:
    """The subject of a card's personal fields."""
    return f"customer:{customer_id}"


def contact_subject(contact_id: object) -> str:
    """The subject of one contact's personal fields (erasable on its own)."""
    return f"contact:{contact_id}"


class SubjectErased(Exception):
    """The subject's personal data was erased: no key is ever made for it again."""

    def __init__(self, subjects: Iterable[str]) -> None:
        self.subjects = sorted(subjects)
        super().__init__(
            f"personal data of {', '.join(self.subjects)} was erased; nothing new can be stored for it"
        )


@dataclass(frozen=True, slots=True)
class DataKey:
    """One subject's data key; `secret` None once erased (destroyed)."""

    key_id: str
    subject: str
    secret: bytes | None
    aead: AESGCM | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, key_id: str, subject: str, secret: bytes | None) -> DataKey:
        """A key with its cipher ready (None secret: an erased subject)."""
        return cls(key_id, subject, secret, AESGCM(secret) if secret else None)

    @property
    def erased(self) -> bool:
        """Whether the key was destroyed."""
        return self.secret is None


class KeyProvider(Protocol):
    """Where data keys come from."""

    async def for_subjects(self, subjects: Iterable[str]) -> dict[str, DataKey]:
        """The key of each subject, made if missing; raises SubjectErased for an erased one."""
        ...

    async def by_ids(self, key_ids: Iterable[str]) -> dict[str, DataKey]:
        """The keys with these ids (an erased or unknown one has no secret)."""
        ...


@runtime_checkable
class DeferredKeys(Protocol):
    """A provider whose new keys can be stored in the same statement as the events they encrypt."""

    async def prepare(
        self, subjects: Iterable[str], fresh: set[str]
    ) -> tuple[dict[str, DataKey], list[DataKey]]:
        """The keys of these subjects and, among them, the new ones not stored yet (`fresh`
        subjects were just born: a card's first event, a new contact; no key is looked up)."""
        ...

    def store_fragment(self, new: list[DataKey]) -> tuple[str, list[Any]]:
        """SQL (with `{}` per argument) and arguments that store the new keys; a taken subject fails."""
        ...

    def remember(self, new: list[DataKey]) -> None:
        """The new keys were committed."""
        ...

    def conflicted(self, new: list[DataKey]) -> None:
        """Storing the new keys failed (a subject had a key after all): look them up next time."""
        ...


def encrypt_text(key: DataKey, text: str) -> str:
    """One value as `enc:v1:<key id>:<base64 nonce+ciphertext>` (the key id is authenticated)."""
    assert key.aead is not None, "an erased key encrypts nothing"
    nonce = os.urandom(NONCE_BYTES)
    sealed = key.aead.encrypt(nonce, text.encode(), key.key_id.encode())
    return f"{PREFIX}{key.key_id}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(value: str) -> str | None:
    """The key id of a ciphertext string (None: not a ciphertext)."""
    if not value.startswith(PREFIX):
        return None
    key_id, sep, _ = value[len(PREFIX):].partition(":")
    return key_id if sep else None


def decrypt_text(value: str, keys: Mapping[str, DataKey]) -> str:
    """The plaintext of a ciphertext string; `[erased]` when its key is gone or it does not open."""
    key_id = key_id_of(value)
    if key_id is None:
        return value
    key = keys.get(key_id)
    if key is None or key.aead is None:
        return ERASED
    try:
        raw = base64.b64decode(value[len(PREFIX) + len(key_id) + 1:], validate=True)
        return key.aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], key_id.encode()).decode()
    except (InvalidTag, ValueError, binascii.Error):
        return ERASED


# ---- which fields, and whose --------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def personal_paths(event_type: str) -> tuple[tuple[str, ...], ...]:
    """The marked paths of a registered event type, split on dots (none for unknown types)."""
    if event_type not in REGISTRY:
        return ()
    return tuple(tuple(p.split(".")) for p in sorted(personal_fields(REGISTRY.lookup(event_type))))


def subject_of(event: EventEnvelope) -> str | None:
    """Whose personal data an event carries: its contact's if it names one, else its customer's."""
    data = event.data
    contact_id = data.get("contact_id")
    if contact_id is None and isinstance(data.get("contact"), dict):
        contact_id = data["contact"].get("id")
    if contact_id:
        return contact_subject(contact_id)
    if event.category == "customer":
        return customer_subject(event.stream_id)
    customer_id = data.get("customer_id")
    return customer_subject(customer_id) if customer_id else None


Trie = dict[str, Any]  # path segment -> the trie below, or LEAF
LEAF: Trie = {}


@functools.lru_cache(maxsize=256)
def _trie(event_type: str) -> Trie:
    """The marked paths of a type as a trie, walked once per event."""
    root: Trie = {}
    for path in personal_paths(event_type):
        node = root
        for head in path[:-1]:
            node = node.setdefault(head, {})
        node[path[-1]] = LEAF
    return root


def _is_change(node: dict[str, Any], trie: Trie) -> bool:
    return len(node) == 2 and "old" in node and "new" in node and "old" not in trie and "new" not in trie


def _leaf(value: Any, fn: Callable[[str], str | None]) -> tuple[Any, bool]:
    """(new value, changed): fn maps a text (None: leave it)."""
    if isinstance(value, str):
        out = fn(value)
        return (value, False) if out is None else (out, True)
    if isinstance(value, list):
        items = [fn(v) if isinstance(v, str) else None for v in value]
        if all(i is None for i in items):
            return value, False
        return [v if i is None else i for v, i in zip(value, items, strict=True)], True
    if isinstance(value, dict) and len(value) == 2 and "old" in value and "new" in value:  # a change
        old, c1 = _leaf(value["old"], fn)
        new, c2 = _leaf(value["new"], fn)
        return ({"old": old, "new": new}, True) if c1 or c2 else (value, False)
    return value, False


def _walk(node: Any, trie: Trie, fn: Callable[[str], str | None]) -> tuple[Any, bool]:
    """A copy of node with fn applied at the trie's leaves (through change maps' old/new)."""
    if not isinstance(node, dict):
        return node, False
    if _is_change(node, trie) and not any(k in node for k in trie):  # a nested value's change
        old, c1 = _walk(node["old"], trie, fn)
        new, c2 = _walk(node["new"], trie, fn)
        return ({"old": old, "new": new}, True) if c1 or c2 else (node, False)
    out: dict[str, Any] | None = None
    for key, below in trie.items():
        if key in node:
            value, changed = _leaf(node[key], fn) if below is LEAF else _walk(node[key], below, fn)
            if changed:
                out = out if out is not None else dict(node)
                out[key] = value
    return (out, True) if out is not None else (node, False)


def _plain(value: str) -> str | None:
    return None if value.startswith(PREFIX) else value


def needs_key(event: EventEnvelope) -> str | None:
    """The subject whose key this event needs (None: nothing personal to encrypt)."""
    trie = _trie(event.type)
    if not trie or not _walk(event.data, trie, _plain)[1]:
        return None
    return subject_of(event)


def encrypt_event(event: EventEnvelope, key: DataKey) -> EventEnvelope:
    """The event with each marked value encrypted with `key`."""
    data, changed = _walk(event.data, _trie(event.type),
                          lambda v: None if v.startswith(PREFIX) else encrypt_text(key, v))
    return event.model_copy(update={"data": data}) if changed else event


def redact_event(event: EventEnvelope) -> EventEnvelope:
    """The event with each marked value read as erased."""
    data, changed = _walk(event.data, _trie(event.type), lambda v: ERASED)
    return event.model_copy(update={"data": data}) if changed else event


def _fresh(events: list[EventEnvelope]) -> set[str]:
    """Subjects born in these events: a card's creation (version 1), a contact's addition."""
    out = set()
    for e in events:
        if e.type == "CustomerCreated" and e.version == 1:
            out.add(customer_subject(e.stream_id))
        elif e.type == "ContactAdded" and isinstance(e.data.get("contact"), dict):
            out.add(contact_subject(e.data["contact"].get("id")))
    return out


async def encrypt_events(
    events: list[EventEnvelope], keys: KeyProvider, *, redact_erased: bool = False,
    new_keys: list[DataKey] | None = None,
) -> list[EventEnvelope]:
    """Events ready to store and publish: personal values encrypted.

    An event of an erased subject raises SubjectErased (the fence), or with `redact_erased` is
    written with `"[erased]"` in those fields (a delivery outcome that comes after the erasure).
    With `new_keys` (and a provider that can defer, `DeferredKeys`), keys made for this append
    are not stored yet but added to that list: the caller stores them in the append's statement.
    """
    subjects = {e.event_id: s for e in events if (s := needs_key(e)) is not None}
    if not subjects:
        return events
    wanted = set(subjects.values())

    async def find(wanted: set[str]) -> dict[str, DataKey]:
        if new_keys is not None and isinstance(keys, DeferredKeys):
            found, made = await keys.prepare(wanted, _fresh(events) & wanted)
            new_keys.extend(made)
            return found
        return await keys.for_subjects(wanted)

    try:
        found = await find(wanted)
    except SubjectErased as exc:
        if not redact_erased:
            raise
        rest = wanted - set(exc.subjects)
        found = await find(rest) if rest else {}
    out = []
    for e in events:
        subject = subjects.get(e.event_id)
        out.append(e if subject is None else
                   encrypt_event(e, found[subject]) if subject in found else redact_event(e))
    return out


# ---- reading ------------------------------------------------------------------------------

def key_ids_in(value: Any) -> Iterator[str]:
    """The key ids of every ciphertext string in a JSON value."""
    if isinstance(value, str):
        if (key_id := key_id_of(value)) is not None:
            yield key_id
    elif isinstance(value, dict):
        for v in value.values():
            yield from key_ids_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from key_ids_in(v)


def reveal(value: Any, keys: Mapping[str, DataKey]) -> Any:
    """A JSON value with every ciphertext string opened (or `[erased]`)."""
    if isinstance(value, str):
        return decrypt_text(value, keys) if value.startswith(PREFIX) else value
    if isinstance(value, dict):
        return {k: reveal(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, keys) for v in value]
    return value


async def reveal_all(values: list[Any], keys: KeyProvider) -> list[Any]:
    """Many JSON values opened with one key look-up."""
    ids = {k for v in values for k in key_ids_in(v)}
    if not ids:
        return values
    found = await keys.by_ids(ids)
    return [reveal(v, found) for v in values]


async def decrypt_events(events: list[EventEnvelope], keys: KeyProvider) -> list[EventEnvelope]:
    """Events with their personal values in plaintext (or `[erased]`)."""
    sealed = [(i, ids) for i, e in enumerate(events)
              if personal_paths(e.type) and (ids := set(key_ids_in(e.data)))]
    if not sealed:
        return events
    found = await keys.by_ids({k for _, ids in sealed for k in ids})
    out = list(events)
    for i, _ in sealed:
        out[i] = events[i].model_copy(update={"data": reveal(events[i].data, found)})
    return out



def erased_value(value: Any) -> Any:
    """What an erased value reads as: `[erased]` for a text, each item for a list, None stays None."""
    if isinstance(value, str):
        return ERASED
    if isinstance(value, list):
        return [ERASED for _ in value]
    return value
