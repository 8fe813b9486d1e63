"""Replies to the customer commands this process committed lately (request fingerprints and the
answer to a retried command id are in shared.idempotency)."""

from __future__ import annotations

from collections import OrderedDict

from shared.eventstore import StoredReply


class RecentReplies:
    """Replies to the last commands this process committed, by command id (bounded)."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self.max_entries = max_entries
        self._replies: OrderedDict[str, StoredReply] = OrderedDict()

    def get(self, command_id: str) -> StoredReply | None:
        """The stored reply and fingerprint, if this process committed that command recently."""
        return self._replies.get(command_id)

    def forget_customer(self, customer_id: str) -> None:
        """Drop the replies about one customer (they hold personal data that was just erased)."""
        prefix = reply_prefix(customer_id).encode()
        for command_id in [c for c, r in self._replies.items() if r.reply.startswith(prefix)]:
            del self._replies[command_id]

    def put(self, command_id: str, reply: StoredReply) -> None:
        """Remember a committed command's reply and fingerprint."""
        self._replies[command_id] = reply
        if len(self._replies) > self.max_entries:
            self._replies.popitem(last=False)


def reply_prefix(customer_id: str) -> str:
    """How every stored reply about this customer (its card, `id` first) begins."""
    return f'{{"id":"{customer_id}",'
