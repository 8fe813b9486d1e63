"""Customer partitions: how replicas of a service share a stream while each customer stays in order.

Each partitioned stream stores its messages with one more subject token, a partition number
that JetStream computes on the way in from the customer token (a stream subject transform,
`{{partition(8, n)}}`). Publishers keep publishing the plain subjects. Two layouts (ADR 0026):
- *last* (ADR 0004): `events.customer.<customer_id>.<Type>` is stored as
  `events.customer.<customer_id>.<Type>.<0-7>`;
- *before* the key token (`PartitionKey(before=True)`, CALLS): `calls.cdr.<customer_id>` is
  stored as `calls.cdr.<0-7>.<customer_id>`. A partition's filter (`calls.*.3.*`) then names a
  branch of the stored subjects that nats-server's filestore walks alone, instead of every
  customer's subjects (24 -> 4 µs of nats-server CPU per message, docs/performance.md).
A stream switched from *last* to *before* keeps its older messages as they were stored: the
live durables read both shapes until they are past them (shared.partition_layout).

A consumer is split into one durable per partition (`<durable>-p<k>`), each filtering its
partition's token. Replica `i` of `n` takes the partitions `k` with `k % n == i`; each partition
is read by one loop in one process at a time, so a customer's messages are handled in order,
while the partitions of different replicas run in parallel.

Subjects outside the key's shape (invoices on BILLING_EVENTS) belong to partition 0. Messages
stored before a stream had its transform carry no token: live consumers do not read them, a
rebuild does (`stored_filters`).

Declare a consumer with ONE filter in the partitioned shape where you can: JetStream serves a
consumer with several filter subjects much more slowly (measured here: 3.7k against 26k call
records/s).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from nats.js.api import SubjectTransform

PARTITIONS = 8  # changing it re-maps customers: drain every partitioned consumer first


@dataclass(frozen=True)
class PartitionKey:
    """The stored subjects that get a partition token, and which `*` of them is the customer."""

    src: str
    token: int  # 1-based index of the `*` that holds the customer (or aggregate) id
    before: bool = False  # the partition token right before the key token, else last

    @property
    def index(self) -> int:
        """Where the partition token is in a stored subject (0-based; -1: last)."""
        if not self.before:
            return -1
        wildcards = [i for i, part in enumerate(self.src.split(".")) if part == "*"]
        if not 1 <= self.token <= len(wildcards):
            raise ValueError(f"{self.src} has no wildcard number {self.token}")
        return wildcards[self.token - 1]

    def last(self) -> PartitionKey:
        """The same key in the older layout (token last): what a switched stream stored before."""
        return replace(self, before=False)

    def stored(self, tokens: list[str], partition: str) -> list[str]:
        """A subject (or filter) of the key's shape, as tokens, with the partition token put in."""
        if not self.before:
            return [*tokens, partition]
        i = self.index
        return [*tokens[:i], partition, *tokens[i:]]

    def transform(self, partitions: int = PARTITIONS) -> SubjectTransform:
        """The stream's subject transform: the same subject with `.<partition>` put in."""
        parts = []
        wildcard = 0
        for part in self.src.split("."):
            if part == "*":
                wildcard += 1
                parts.append(f"{{{{wildcard({wildcard})}}}}")
            else:
                parts.append(part)
        if not 1 <= self.token <= wildcard:
            raise ValueError(f"{self.src} has no wildcard number {self.token}")
        dest = ".".join(self.stored(parts, f"{{{{partition({partitions},{self.token})}}}}"))
        return SubjectTransform(src=self.src, dest=dest)

    def split(self, stored: str) -> tuple[str, int | None]:
        """A stored subject's published subject and partition (None: stored without a token).

        Either layout is recognised (a switched stream holds both): the token where this key puts
        it, else last. A subject outside the key's shape is its own published subject.
        """
        tokens = stored.split(".")
        src = self.src.split(".")
        if len(tokens) == len(src) + 1:
            for at in ([self.index, -1] if self.before else [-1]):
                token = tokens[at]
                rest = tokens[:at] + tokens[at + 1:] if at >= 0 else tokens[:-1]
                if token.isdigit() and int(token) < PARTITIONS and _within(rest, src):
                    return ".".join(rest), int(token)
        return stored, None


def _overlap(a: list[str], b: list[str]) -> bool:
    """True when some subject matches both filters (token lists)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x == ">" or y == ">":
            return len(a) > i and len(b) > i
        if x != "*" and y != "*" and x != y:
            return False
    return len(a) == len(b)


def _within(inner: list[str], outer: list[str]) -> bool:
    """True when every subject `inner` matches also matches `outer` (no `>` in outer)."""
    if len(inner) != len(outer) or ">" in inner:
        return False
    return all(o == "*" or o == i for i, o in zip(inner, outer, strict=True))


def partition_filters(filters: list[str], key: PartitionKey | None, partition: int) -> list[str]:
    """The filter subjects of one partition's consumer, for a consumer declared with `filters`.

    A filter inside the key's shape is read with the partition's token (where the key's layout
    puts it). A filter disjoint from it belongs to partition 0. A filter that straddles it
    (`events.>`) is a declaration error: name the partitioned shape and the rest separately.
    """
    out: list[str] = []
    src = key.src.split(".") if key else None
    for f in filters:
        tokens = f.split(".")
        if key is not None and src is not None and _within(tokens, src):
            out.append(".".join(key.stored(tokens, str(partition))))
        elif src is not None and _overlap(tokens, src):
            raise ValueError(f"filter {f} straddles the partitioned subjects {key.src if key else ''}:"
                             " declare the partitioned shape and the other subjects separately")
        elif partition == 0:
            out.append(f)
    return out


def stored_filters(filters: list[str], key: PartitionKey | None) -> list[str]:
    """Filters that read every partition at once (a rebuild, a count): with and without the token.

    `calls.*.*` becomes the one filter `calls.*.>` (one filter is JetStream's fast path); a
    filter ending in a literal token needs two (`...Verified`, `...Verified.*`), and with the
    token before the key three (the older layout's messages are read too).
    """
    if key is None:
        return list(filters)
    src = key.src.split(".")
    out: list[str] = []
    for f in filters:
        tokens = f.split(".")
        if not _within(tokens, src):
            out.append(f)
            continue
        wide = [*tokens[:-1], ">"] if tokens[-1] == "*" else None
        shapes = [tokens, [*tokens, "*"]]
        if key.before:
            shapes.append(key.stored(tokens, "*"))
        if wide is not None and all(_covers(wide, shape) for shape in shapes):
            out.append(".".join(wide))
        else:
            out += [".".join(shape) for shape in dict.fromkeys(tuple(x) for x in shapes)]
    return out


def _covers(outer: list[str], inner: list[str]) -> bool:
    """True when `outer` (ending in `>`) matches every subject `inner` (no `>`) matches."""
    head = outer[:-1]
    return len(inner) > len(head) and all(o == "*" or o == i for o, i in zip(head, inner, strict=False))


def published_subject(stored: str, key: PartitionKey | None) -> str:
    """The subject a message was published to: its stored subject without the partition token.

    What to publish again (a dead letter's replay, a switch's retry): the stream partitions it anew.
    """
    return key.split(stored)[0] if key is not None else stored


def stored_partition(stored: str, key: PartitionKey | None) -> int | None:
    """The partition token of a stored subject, in either layout (None: it has none)."""
    return key.split(stored)[1] if key is not None else None


def owned_partitions(replica_index: int, replica_count: int) -> list[int]:
    """The partitions replica `replica_index` of `replica_count` reads."""
    if not 1 <= replica_count <= PARTITIONS:
        raise ValueError(f"replica count must be 1..{PARTITIONS}, not {replica_count}")
    if not 0 <= replica_index < replica_count:
        raise ValueError(f"replica index must be 0..{replica_count - 1}, not {replica_index}")
    return [p for p in range(PARTITIONS) if p % replica_count == replica_index]


class _Spec(Protocol):
    @property
    def durable(self) -> str: ...
    @property
    def filter_subjects(self) -> list[str]: ...
    @property
    def legacy_filters(self) -> tuple[str, ...]: ...


Spec = TypeVar("Spec", bound=_Spec)


def partition_specs(spec: Spec, key: PartitionKey | None, owned: list[int]) -> list[Spec]:
    """One durable consumer per owned partition that has subjects to read.

    With the token before the key, each also names its filters in the older layout (token last),
    which it reads too while a switched stream still has such messages ahead of it.
    """
    if key is None:  # a stream without partitions: one consumer, owned by the replica with partition 0
        return [spec] if 0 in owned else []
    specs = []
    for p in owned:
        filters = partition_filters(spec.filter_subjects, key, p)
        legacy = tuple(partition_filters(spec.filter_subjects, key.last(), p)) if key.before else ()
        if filters:
            specs.append(replace(spec,  # type: ignore[type-var]
                                 durable=f"{spec.durable}-p{p}", filter_subjects=filters,
                                 legacy_filters=legacy))
    return specs
