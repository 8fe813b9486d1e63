"""Where a partitioned stream puts its partition token, and moving a stream to the faster layout.

A stream whose `PartitionKey` says `before=True` stores the partition token before the key token
(ADR 0026). An existing stream in the older layout (token last) is switched by the provisioner
(`switch_stream`): its transform changes, the messages stored before keep their subjects, and
the stream's metadata records where the older shape ends:
- `patchbay.partitions.from`: a sequence at or below the first message stored in the new layout;
- `patchbay.partitions.until`: a sequence at or above the last message stored in the older one.

A live durable of a switched stream (`plan_durable`) reads both shapes while messages of the older
one remain ahead of it, then the new shape alone. A durable that read with the older filter alone
after the switch (a process of the previous release, or one that had not seen the switch yet)
passed over messages of the new shape without delivering them: it is re-created to start at
`min(ack floor + 1, from)`, so nothing is lost (the projections' writes are idempotent, so what
comes twice changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import structlog
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from shared.partitions import PartitionKey

if TYPE_CHECKING:
    from shared.consumer import ConsumerSpec

log = structlog.get_logger(__name__)

FROM = "patchbay.partitions.from"
UNTIL = "patchbay.partitions.until"
_UNKNOWN = str(2**63 - 1)  # the end of the older shape, until the switch has read it


@dataclass(frozen=True)
class Layout:
    """A stream's layout now, and (when it was switched) where the older shape ends."""

    before: bool
    first_new: int = 1  # at or below the first message stored in this layout
    last_old: int = 0  # at or above the last message stored in the older layout (0: none)


def layout_of(config: StreamConfig) -> Layout:
    """The layout a stream's config says: its transform, and the bounds in its metadata."""
    transform = config.subject_transform
    dest = transform.dest if transform is not None and transform.dest else ""
    before = "{{partition(" in dest and "{{partition(" not in dest.rsplit(".", 1)[-1]
    meta = config.metadata or {}
    if not before:
        return Layout(False)
    return Layout(True, int(meta.get(FROM, 1)), int(meta.get(UNTIL, 0)))


async def stream_layout(js: JetStreamContext, stream: str) -> Layout:
    """The layout of `stream` as the server has it now."""
    return layout_of((await js.stream_info(stream)).config)


def _ours(config: StreamConfig) -> dict[str, str]:
    """The stream's metadata without the server's own keys (`_nats.*`, set again by the server)."""
    return {k: v for k, v in (config.metadata or {}).items() if not k.startswith("_nats.")}


async def update_stream(
    js: JetStreamContext, key: PartitionKey | None, cfg: StreamConfig, info: StreamInfo,
) -> None:
    """Bring an existing stream to `cfg`; switch it to the token-before layout if its key says so."""
    current = info.config
    meta = _ours(current)
    if key is None or not key.before or layout_of(current).before:
        if meta.get(UNTIL) == _UNKNOWN:  # a switch stopped half way: every message so far may be old
            meta[UNTIL] = str(info.state.last_seq)
        cfg.metadata = meta | (cfg.metadata or {}) if (meta or cfg.metadata) else None
        await js.update_stream(cfg)
        return
    # messages stored until now keep the older shape; the first new one comes after this
    first_new = info.state.last_seq + 1
    cfg.metadata = meta | {FROM: str(first_new), UNTIL: _UNKNOWN}
    await js.update_stream(cfg)
    last_old = (await js.stream_info(cfg.name)).state.last_seq
    cfg.metadata = meta | {FROM: str(first_new), UNTIL: str(last_old)}
    await js.update_stream(cfg)
    log.info("stream_partition_layout_switched", stream=cfg.name, first_new=first_new, last_old=last_old,
             hint="messages stored before keep their subjects; live durables read both until past them")


def new_stream_metadata(key: PartitionKey | None) -> dict[str, str] | None:
    """A new stream in the token-before layout has no older messages."""
    return {FROM: "1", UNTIL: "0"} if key is not None and key.before else None


@dataclass(frozen=True)
class Plan:
    """How a partition's durable is declared now."""

    spec: ConsumerSpec
    layout: Layout
    start_seq: int | None = None  # re-create the durable to start here (None: keep its position)
    narrow_after: int | None = None  # past this sequence, declare it again with the new shape alone


def _filters(info: ConsumerInfo) -> set[str]:
    cfg = info.config
    return set(cfg.filter_subjects or []) | ({cfg.filter_subject} if cfg.filter_subject else set())


async def plan_durable(js: JetStreamContext, spec: ConsumerSpec) -> Plan:
    """The filters (and start) of a partition's durable on a stream that has or may get the new layout.

    `spec.filter_subjects` are the new shape's, `spec.legacy_filters` the older shape's. A durable
    whose filters change is re-created (at its ack floor, or before the switch): an update in place
    would leave the pull requests of its previous reader waiting at the server, to be answered
    into an inbox nobody reads.
    """
    layout = await stream_layout(js, spec.stream)
    try:
        info: ConsumerInfo | None = await js.consumer_info(spec.stream, spec.durable)
    except NotFoundError:
        info = None
    floor = (info.ack_floor.stream_seq if info is not None and info.ack_floor else 0) + 1
    if not layout.before:  # not switched yet: the older shape, watched for a switch
        return _planned(replace(spec, filter_subjects=list(spec.legacy_filters)), layout, info, floor, None)
    start: int | None = None
    if info is not None and not set(spec.filter_subjects) <= _filters(info):
        # it read the older shape alone: it may have passed new-shape messages undelivered
        start = min(floor, layout.first_new)
    ahead = start if start is not None else (1 if info is None else floor)
    # nothing left to deliver (a quiet partition's ack floor stays behind): nothing old ahead
    idle = start is None and info is not None and not info.num_pending and not info.num_ack_pending
    if ahead > layout.last_old or idle:
        return _planned(spec, layout, info, floor, start)
    both = list(dict.fromkeys([*spec.filter_subjects, *spec.legacy_filters]))
    return _planned(replace(spec, filter_subjects=both), layout, info, floor, start, layout.last_old)


def _planned(spec: ConsumerSpec, layout: Layout, info: ConsumerInfo | None, floor: int, start: int | None,
             narrow_after: int | None = None) -> Plan:
    """The plan, re-creating the durable at its ack floor when its filters change."""
    if start is None and info is not None and set(spec.filter_subjects) != _filters(info):
        start = floor
    return Plan(spec, layout, start, narrow_after)
