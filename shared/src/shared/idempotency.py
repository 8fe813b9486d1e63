"""Idempotency of commands: request fingerprints, and the answer to a command id seen before.

A command with `meta.command_id` stores its first reply with a fingerprint of its request: a
retry with the same id and the same request gets that reply again; the same id with another
request (a client reusing an Idempotency-Key) answers a conflict. The fingerprint leaves out the
meta, since who asks, why and the correlation id may differ between retries of one request.
"""

from __future__ import annotations

import hashlib

import orjson
from pydantic import BaseModel

from shared.errors import key_reused
from shared.eventstore import EventStore, StoredReply
from shared.rpc import error_bytes

_META: set[str] = {"meta"}  # who asks, why, the correlation: not the request
KEY_REUSED_REPLY = error_bytes(key_reused())


def fingerprint(request: object, kind: str | None = None) -> str:
    """A cheap hash of a request's kind (default: its type) and its payload without `meta`.

    A pydantic request counts only the fields it was given; a command dataclass counts all its
    fields, so one built with generated values (a new contact id, a password hash, a chosen
    block) must be given the fingerprint of the request it came from instead.
    """
    if isinstance(request, BaseModel):
        payload = request.model_dump_json(exclude=_META, exclude_unset=True).encode()
    else:
        fields = {k: v for k, v in vars(request).items() if k != "meta"}
        payload = orjson.dumps(fields, default=str, option=orjson.OPT_SORT_KEYS)
    name = kind or type(request).__name__
    return hashlib.blake2b(name.encode() + b"\0" + payload, digest_size=16).hexdigest()


def replay(first: StoredReply, fingerprint: str | None) -> bytes:
    """The first reply to a retried command; a conflict if it was another request.

    A reply stored before fingerprints were kept (None) is answered as it is.
    """
    if first.fingerprint is not None and first.fingerprint != fingerprint:
        return KEY_REUSED_REPLY
    return first.reply


async def answered_before(store: EventStore, command_id: str, fingerprint: str | None) -> bytes | None:
    """The answer to a command id already handled (`replay`), or None when it is new."""
    first = (await store.stored_replies_with_fingerprints([command_id])).get(command_id)
    return None if first is None else replay(first, fingerprint)
