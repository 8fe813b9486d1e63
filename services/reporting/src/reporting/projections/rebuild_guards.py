"""What a rebuild checks before it replaces live tables: that the streams still hold the history.

A rebuild reads the streams from their first message. When a stream lost its head (its first
sequence is past 1: purged, or limits dropped messages), or is shorter than what the live
projection already applied (a new, empty stream: a data dir switched to a cluster, a stream
deleted and re-created), a rebuild would silently throw history away. So it refuses to switch
over, saying why, unless the operator passes `--allow-shrink`; and it compares the row counts of
the rebuilt tables with the live ones inside the switch-over's lock.
"""

from __future__ import annotations

from typing import Any

from nats.js import JetStreamContext

from reporting.projections.base import Projection, Tables, checkpoints


class RebuildRefused(RuntimeError):
    """The rebuilt projection would lose history; not switched over."""


async def history_problems(js: JetStreamContext, pool: Any, projection: Projection[Any]) -> list[str]:
    """Why the streams cannot rebuild what the live tables hold (empty: they can)."""
    live = await checkpoints(pool, projection, Tables.live(projection.tables))
    problems = []
    for source in projection.sources:
        state = (await js.stream_info(source.stream)).state
        if state.first_seq > 1:
            problems.append(f"stream {source.stream} starts at sequence {state.first_seq}: "
                            f"messages 1-{state.first_seq - 1} are gone")
        applied = live.get(source.stream, 0)
        if applied > state.last_seq:
            problems.append(f"stream {source.stream} ends at sequence {state.last_seq}, but the live "
                            f"{projection.name} projection applied up to {applied}: the stream was replaced")
    return problems


async def shrink_problems(conn: Any, projection: Projection[Any], live: Tables, rebuilt: Tables) -> list[str]:
    """Tables the rebuild made smaller than the live ones (empty: none)."""
    problems = []
    for table in projection.tables:
        if table == projection.checkpoint_table:
            continue  # not history: live keeps a row per partition, a rebuild one per stream
        if table in projection.state_tables:
            continue  # not history: the switch-over catches up to the most advanced partition
            # (checkpoints are per stream), so calls a lagging one still shows live may be over
        before = await conn.fetchval(f"SELECT count(*) FROM {live[table]}")
        after = await conn.fetchval(f"SELECT count(*) FROM {rebuilt[table]}")
        if after < before:
            problems.append(f"{table}: {after:,} rows rebuilt against {before:,} live")
    return problems


def refusal(projection: str, problems: list[str]) -> RebuildRefused:
    """The error that stops the switch-over, with every reason and the way out."""
    return RebuildRefused(f"{projection} not switched over, the live tables are kept: " + "; ".join(problems)
                          + ". Restore the streams (patchbay restore, docs/operations.md), or pass "
                          "--allow-shrink to switch to the smaller projection anyway")
