"""The data keys of personal data, in the customer schema's `data_keys` table (docs/privacy.md).

A key is 32 random bytes (AES-256-GCM), sealed at rest with PATCHBAY_SECRET_KEY
(`shared.secrets.Sealer`); kept unsealed in memory in a bounded LRU. A subject gets its key
the first time a value of it is written; an erased subject's row keeps no key and is never
given one again (the fence). This store also serves `customer.query.data-keys`.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import asyncpg
import structlog
from shared.personal_data import DataKey, SubjectErased
from shared.secrets import Sealer

log = structlog.get_logger(__name__)

_UNSEALED = "plain:"  # no PATCHBAY_SECRET_KEY (development only): the key is kept as is

# the erase fragment (joined to the erase event's append): destroy, or tombstone a subject
# that never had a key, in the same statement as the event that says so
ERASE_SQL = (
    "INSERT INTO data_keys (subject, key_id, sealed, erased_at)"
    " SELECT s, 'x' || substr(md5(s || clock_timestamp()::text), 1, 15), NULL, now()"
    " FROM unnest({}::text[]) AS s"
    " ON CONFLICT (subject) DO UPDATE SET sealed = NULL, erased_at = coalesce(data_keys.erased_at, now())"
)


def new_key_id() -> str:
    """A short random key id (it names the key in every ciphertext)."""
    return secrets.token_hex(8)


class DataKeyStore:
    """Makes, finds and caches data keys; the customer service's `KeyProvider`."""

    def __init__(self, pool: asyncpg.Pool, sealer: Sealer | None, *, max_cached: int = 50_000) -> None:
        self.pool = pool
        self.sealer = sealer
        self.max_cached = max_cached
        self._by_id: OrderedDict[str, DataKey] = OrderedDict()
        self._by_subject: dict[str, str] = {}
        self._conflicts: set[str] = set()  # "fresh" subjects that had a key after all
        if sealer is None:
            log.warning("data_keys_unsealed", effect="data keys are stored without PATCHBAY_SECRET_KEY")

    def _seal(self, secret: bytes) -> str:
        text = base64.b64encode(secret).decode()
        return self.sealer.seal(text) if self.sealer else _UNSEALED + text

    def _unseal(self, sealed: str | None) -> bytes | None:
        if sealed is None:
            return None
        if sealed.startswith(_UNSEALED):
            return base64.b64decode(sealed[len(_UNSEALED):])
        if self.sealer is None:
            raise RuntimeError("data keys are sealed: PATCHBAY_SECRET_KEY is needed to read them")
        return base64.b64decode(self.sealer.unseal(sealed))

    def _remember(self, key: DataKey) -> None:
        self._by_id[key.key_id] = key
        self._by_id.move_to_end(key.key_id)
        self._by_subject[key.subject] = key.key_id
        while len(self._by_id) > self.max_cached:
            _, old = self._by_id.popitem(last=False)
            self._by_subject.pop(old.subject, None)

    def _cached(self, subject: str) -> DataKey | None:
        key_id = self._by_subject.get(subject)
        return self._by_id.get(key_id) if key_id else None

    async def for_subjects(self, subjects: Iterable[str]) -> dict[str, DataKey]:
        """The key of each subject, made when missing; SubjectErased when any is erased."""
        wanted = set(subjects)
        missing = [s for s in wanted if self._cached(s) is None]
        if missing:
            made = [(s, new_key_id(), self._seal(os.urandom(32))) for s in missing]
            async with self.pool.acquire() as conn:
                await conn.execute(
                    "INSERT INTO data_keys (subject, key_id, sealed) SELECT * FROM"
                    " unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT (subject) DO NOTHING",
                    *map(list, zip(*made, strict=True)),
                )
                rows = await conn.fetch(
                    "SELECT subject, key_id, sealed FROM data_keys WHERE subject = ANY($1::text[])", missing
                )
            for row in rows:
                self._remember(DataKey.of(row["key_id"], row["subject"], self._unseal(row["sealed"])))
        found = {s: k for s in wanted if (k := self._cached(s)) is not None}
        erased = [s for s, k in found.items() if k.erased]
        if erased:
            raise SubjectErased(erased)
        return found

    async def prepare(
        self, subjects: Iterable[str], fresh: set[str] = frozenset()  # type: ignore[assignment]
    ) -> tuple[dict[str, DataKey], list[DataKey]]:
        """Keys for an append: the known ones, and new ones the append itself stores
        (`store_fragment`), so a command pays no transaction of its own for a new key. `fresh`
        subjects (a new card, a new contact) have no key yet: not looked up, unless storing
        one failed before (`conflicted`)."""
        wanted = set(subjects)
        missing = [s for s in wanted if self._cached(s) is None and (s not in fresh or s in self._conflicts)]
        if missing:
            rows = await self.pool.fetch(
                "SELECT subject, key_id, sealed FROM data_keys WHERE subject = ANY($1::text[])", missing
            )
            for row in rows:
                self._remember(DataKey.of(row["key_id"], row["subject"], self._unseal(row["sealed"])))
        found = {s: k for s in wanted if (k := self._cached(s)) is not None}
        erased = [s for s, k in found.items() if k.erased]
        if erased:
            raise SubjectErased(erased)
        made = [DataKey.of(new_key_id(), s, os.urandom(32)) for s in wanted if s not in found]
        return found | {k.subject: k for k in made}, made

    def store_fragment(self, new: list[DataKey]) -> tuple[str, list[Any]]:
        """The INSERT of new keys (no ON CONFLICT: a subject taken meanwhile, or erased, fails the append)."""
        return (
            "INSERT INTO data_keys (subject, key_id, sealed)"
            " SELECT * FROM unnest({}::text[], {}::text[], {}::text[])",
            [[k.subject for k in new], [k.key_id for k in new], [self._seal(k.secret or b"") for k in new]],
        )

    def remember(self, new: list[DataKey]) -> None:
        """Keys stored by a committed append."""
        for key in new:
            self._remember(key)
            self._conflicts.discard(key.subject)

    def conflicted(self, new: list[DataKey]) -> None:
        """Storing these keys failed: their subjects are looked up from now on (bounded)."""
        if len(self._conflicts) > 10_000:
            self._conflicts.clear()
        self._conflicts.update(k.subject for k in new)

    async def by_ids(self, key_ids: Iterable[str]) -> dict[str, DataKey]:
        """The keys with these ids; an erased one has no secret, an unknown one is absent."""
        wanted = set(key_ids)
        missing = [k for k in wanted if k not in self._by_id]
        if missing:
            rows = await self.pool.fetch(
                "SELECT subject, key_id, sealed FROM data_keys WHERE key_id = ANY($1::text[])", missing
            )
            for row in rows:
                self._remember(DataKey.of(row["key_id"], row["subject"], self._unseal(row["sealed"])))
        return {k: self._by_id[k] for k in wanted if k in self._by_id}

    async def describe(self, key_ids: Iterable[str], subjects: Iterable[str]) -> list[DataKey]:
        """Keys by id and by subject (made when missing; an erased subject's comes back without secret)."""
        out = dict(await self.by_ids(key_ids))
        wanted = list(subjects)
        try:
            out |= {k.key_id: k for k in (await self.for_subjects(wanted)).values()}
        except SubjectErased:
            for subject in wanted:  # some erased: take each alone, the erased ones without secret
                try:
                    out |= {k.key_id: k for k in (await self.for_subjects([subject])).values()}
                except SubjectErased:
                    if (key := self._cached(subject)) is not None:
                        out[key.key_id] = key
        return list(out.values())

    def forget(self, subjects: Iterable[str]) -> None:
        """Drop the cached keys of these subjects (they were just erased)."""
        for subject in subjects:
            key_id = self._by_subject.pop(subject, None)
            if key_id is not None:
                self._by_id.pop(key_id, None)
