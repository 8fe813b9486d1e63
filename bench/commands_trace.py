"""Where the slow commands spent their time: joins a `BENCH_TRACE=<dir>` run's two timelines.

    BENCH_TRACE=/tmp/t uv run python bench/commands.py --clients 32 --seconds 8
    uv run python bench/commands_trace.py /tmp/t

The client's (each request's send and reply, by correlation id) and the customer service's
(PATCHBAY_COMMAND_TRACE: each batch's cut, decision, append and replies; the collector, the relay's
passes, the loop's stalls, the statements' round trips). Both use CLOCK_MONOTONIC. Prints, per
phase, each request's path split into steps for the median request and for the slowest 1 %, and
what else happened while the slowest ones waited.
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any

STEPS = ("to service", "queued", "deciding", "append", "answering", "to client")


def _load(where: Path) -> tuple[dict[str, Any], list[Any]]:
    client = json.loads((where / "client.json").read_text())
    rows = [json.loads(line) for line in (where / "service.jsonl").read_text().splitlines() if line]
    return client, rows


def _paths(client: dict[str, Any], rows: list[Any]) -> list[tuple[str, float, float, list[float], list[float]]]:
    """Per request: its id, send, reply, its steps (ms), and its batch's marks."""
    seen: dict[str, tuple[float | None, list[float]]] = {}
    for row in rows:
        if row[0] == "batch":
            for corr, received in row[2]:
                seen[corr] = (received, row[1])
    out = []
    for corr, sent, back in client["timeline"]:
        if corr not in seen:
            continue
        received, marks = seen[corr]
        if len(marks) < 4 or received is None:
            continue
        cut, decided, appended, answered = marks[0], marks[1], marks[2], marks[-1]
        points = [sent, received, cut, decided, appended, answered, back]
        out.append((corr, sent, back, [(b - a) * 1000 for a, b in itertools.pairwise(points)], marks))
    return out


def _overlaps(rows: list[Any], kind: str, start: float, end: float) -> list[Any]:
    return [r for r in rows if r[0] == kind and r[1] < end and r[2] > start]


def report(where: Path) -> None:
    """Print the split of the median and the slowest requests of each phase."""
    client, rows = _load(where)
    paths = _paths(client, rows)
    batches = [r for r in rows if r[0] == "batch" and len(r[1]) >= 4]
    for prefix, name in (("c-", "create"), ("u-", "update")):
        mine = [p for p in paths if p[0].startswith(prefix)]
        if not mine:
            continue
        mine.sort(key=lambda p: p[2] - p[1])
        slow = mine[int(len(mine) * 0.99):]
        print(f"\n{name}: {len(mine)} requests, p50 {(mine[len(mine) // 2][2] - mine[len(mine) // 2][1]) * 1000:.2f} ms,"
              f" p99 {(slow[0][2] - slow[0][1]) * 1000:.2f} ms")
        for label, group in (("all (median of each step)", mine), ("slowest 1 % (median)", slow)):
            medians = [statistics.median(p[3][i] for p in group) for i in range(len(STEPS))]
            print(f"  {label:<28} " + "  ".join(f"{s} {m:.2f}" for s, m in zip(STEPS, medians, strict=True)))
        start, end = min(p[1] for p in mine), max(p[2] for p in mine)
        phase_batches = [b for b in batches if start <= b[1][0] <= end]
        sizes = [len(b[2]) for b in phase_batches]
        rounds = [(b[1][2] - b[1][1]) * 1000 for b in phase_batches]
        print(f"  batches {len(phase_batches)}: size median {statistics.median(sizes):.0f}, max {max(sizes)};"
              f" append p50 {statistics.median(rounds):.2f} ms, p99 {sorted(rounds)[int(len(rounds) * 0.99)]:.2f},"
              f" max {max(rounds):.2f}")
        for kind in ("gc", "stall", "relay"):
            found = [r for r in rows if r[0] == kind and start <= r[1] <= end]
            if found:
                lengths = sorted((r[2] - r[1]) * 1000 for r in found)
                print(f"  {kind}: {len(found)}, total {sum(lengths):.0f} ms, p50 {statistics.median(lengths):.2f},"
                      f" max {lengths[-1]:.2f} ms")
        print("  the 12 slowest (ms): total = " + " + ".join(STEPS) + "; overlapping")
        for corr, sent, back, steps, _ in slow[-12:]:
            notes = []
            for kind in ("gc", "stall"):
                hit = _overlaps(rows, kind, sent, back)
                if hit:
                    notes.append(f"{kind} {sum((r[2] - r[1]) * 1000 for r in hit):.1f}")
            relay = _overlaps(rows, "relay", sent, back)
            if relay:
                notes.append(f"relay {len(relay)} passes {sum((r[2] - r[1]) * 1000 for r in relay):.1f}")
            print(f"    {corr:<10} {(back - sent) * 1000:6.2f} = " + " + ".join(f"{s:.2f}" for s in steps)
                  + "   " + ", ".join(notes))


if __name__ == "__main__":
    report(Path(sys.argv[1]))
