"""Data keys for services other than the customer service: asked over NATS, cached with a bound.

The one documented path to personal data's plaintext outside the customer service
(docs/privacy.md): `customer.query.data-keys` answers keys by id (to read) or by subject (to
write). Keys are cached in a bounded LRU for at most `ttl_s`; an erasure event
(`events.customer.*.CustomerErased` / `ContactErased`, core NATS) drops its subjects' keys at
once, and the TTL bounds how long a missed one could linger.
"""

from __future__ import annotations

import base64
import json
import time
from collections import OrderedDict
from collections.abc import Iterable

import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.contracts.privacy import DataKeys, DataKeysQuery, PrivacySubjects
from shared.envelope import EventEnvelope
from shared.errors import ErrorCode, ServiceError
from shared.personal_data import DataKey, SubjectErased

log = structlog.get_logger(__name__)

ERASURE_SUBJECTS = ("events.customer.*.CustomerErased", "events.customer.*.ContactErased")
BATCH = 1000  # ids or subjects per request (the contract's bound)


class DataKeyClient:
    """A `KeyProvider` that asks the customer service; bounded and time-limited cache."""

    def __init__(
        self, nc: NatsClient, *, timeout_s: float = 5.0, max_cached: int = 20_000, ttl_s: float = 300.0
    ) -> None:
        self.nc = nc
        self.timeout_s = timeout_s
        self.max_cached = max_cached
        self.ttl_s = ttl_s
        self._by_id: OrderedDict[str, tuple[float, DataKey]] = OrderedDict()
        self._by_subject: dict[str, str] = {}
        self._subs: list[Subscription] = []
        self.requests = 0

    async def start(self) -> None:
        """Listen for erasures: their keys leave the cache at once."""
        for subject in ERASURE_SUBJECTS:
            self._subs.append(await self.nc.subscribe(subject, cb=self._on_erased))

    async def stop(self) -> None:
        """Stop listening."""
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()

    async def _on_erased(self, msg: Msg) -> None:
        try:
            event = EventEnvelope.model_validate_json(msg.data)
            self.forget(event.data.get("subjects") or [])
        except ValueError:
            log.warning("erasure_unreadable", subject=msg.subject)

    def forget(self, subjects: Iterable[str]) -> None:
        """Drop these subjects' keys."""
        for subject in subjects:
            key_id = self._by_subject.pop(subject, None)
            if key_id is not None:
                self._by_id.pop(key_id, None)

    def _get(self, key_id: str) -> DataKey | None:
        entry = self._by_id.get(key_id)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            self._by_id.pop(key_id, None)
            self._by_subject.pop(entry[1].subject, None)
            return None
        self._by_id.move_to_end(key_id)
        return entry[1]

    def _remember(self, key: DataKey) -> None:
        self._by_id[key.key_id] = (time.monotonic() + self.ttl_s, key)
        self._by_id.move_to_end(key.key_id)
        self._by_subject[key.subject] = key.key_id
        while len(self._by_id) > self.max_cached:
            _, (_, old) = self._by_id.popitem(last=False)
            self._by_subject.pop(old.subject, None)

    async def _ask(self, query: DataKeysQuery) -> list[DataKey]:
        self.requests += 1
        try:
            msg = await self.nc.request(
                PrivacySubjects.DATA_KEYS, query.model_dump_json().encode(), timeout=self.timeout_s
            )
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError, TimeoutError):
            raise ServiceError(
                ErrorCode.UNAVAILABLE, "the customer service did not answer (data keys)"
            ) from None
        body = json.loads(msg.data)
        if "error" in body:
            raise ServiceError(ErrorCode.UNAVAILABLE, f"data keys refused: {body['error'].get('message')}")
        answer = DataKeys.model_validate(body)
        keys = [DataKey.of(k.key_id, k.subject, base64.b64decode(k.key) if k.key else None)
                for k in answer.keys]
        for key in keys:
            self._remember(key)
        return keys

    async def by_ids(self, key_ids: Iterable[str]) -> dict[str, DataKey]:
        """The keys with these ids (an erased one without secret; an unknown one absent)."""
        wanted = set(key_ids)
        found = {k: key for k in wanted if (key := self._get(k)) is not None}
        missing = sorted(wanted - set(found))
        for i in range(0, len(missing), BATCH):
            for key in await self._ask(DataKeysQuery(key_ids=missing[i:i + BATCH])):
                found[key.key_id] = key
        return found

    async def for_subjects(self, subjects: Iterable[str]) -> dict[str, DataKey]:
        """The key of each subject (made by the customer service when missing); SubjectErased if erased."""
        wanted = set(subjects)
        found: dict[str, DataKey] = {}
        for subject in wanted:
            key_id = self._by_subject.get(subject)
            if key_id is not None and (key := self._get(key_id)) is not None:
                found[subject] = key
        missing = sorted(wanted - set(found))
        for i in range(0, len(missing), BATCH):
            for key in await self._ask(DataKeysQuery(subjects=missing[i:i + BATCH])):
                found[key.subject] = key
        erased = [s for s, k in found.items() if k.erased]
        if erased:
            raise SubjectErased(erased)
        return found
