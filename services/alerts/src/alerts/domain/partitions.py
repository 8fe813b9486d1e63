"""A customer's partition as JetStream computes it (`{{partition(8, n)}}`: FNV-1a 32 of the token)."""

from __future__ import annotations

PARTITIONS = 8  # shared.partitions.PARTITIONS (not imported: it brings nats into the domain)
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


def partition_of(token: str, partitions: int = PARTITIONS) -> int:
    """The partition JetStream gives a subject token (for messages stored without one)."""
    h = FNV_OFFSET
    for byte in token.encode():
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return h % partitions
