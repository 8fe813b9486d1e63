"""Call figures per minute, and the sums over a window of minutes (true averages, not means of means)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

KEEP_MINUTES = 1440  # the longest window a rule may have


def minute_of(at: datetime) -> int:
    """Minutes since the epoch."""
    return int(at.timestamp()) // 60


@dataclass(slots=True)
class Minute:
    """The calls that ended in one minute."""

    attempts: int = 0
    connected: int = 0
    duration_s: int = 0
    pdd_ms: int = 0
    pdd_n: int = 0


class Figures(NamedTuple):
    """Sums over a window (a tuple: made for every window of every call record)."""

    attempts: int
    connected: int
    duration_s: int
    pdd_ms: int
    pdd_n: int
    minutes: int

    def asr(self) -> Decimal | None:
        """Answered over attempts, in percent."""
        return Decimal(self.connected * 100) / self.attempts if self.attempts else None

    def acd(self) -> Decimal | None:
        """Seconds per answered call."""
        return Decimal(self.duration_s) / self.connected if self.connected else None

    def pdd(self) -> Decimal | None:
        """Milliseconds of post-dial delay per call that reported one."""
        return Decimal(self.pdd_ms) / self.pdd_n if self.pdd_n else None

    def attempts_per_minute(self) -> Decimal:
        """Attempts over the window's length."""
        return Decimal(self.attempts) / self.minutes


@dataclass(slots=True)
class CallWindow:
    """One customer's minutes; `latest` is the newest minute seen (the window ends there)."""

    minutes: dict[int, Minute] = field(default_factory=dict)
    latest: int = 0
    dirty: set[int] = field(default_factory=set)

    def add(self, minute: int, connected: bool, duration_s: int, pdd_ms: int | None) -> None:
        """Count one call record."""
        m = self.minutes.get(minute)
        if m is None:
            m = self.minutes[minute] = Minute()
        m.attempts += 1
        if connected:
            m.connected += 1
            m.duration_s += duration_s
        if pdd_ms is not None:
            m.pdd_ms += pdd_ms
            m.pdd_n += 1
        self.dirty.add(minute)
        if minute > self.latest:
            self.latest = minute
            self.prune()

    def prune(self) -> None:
        """Forget minutes older than the longest window."""
        floor = self.latest - KEEP_MINUTES
        for old in [k for k in self.minutes if k <= floor]:
            del self.minutes[old]

    def figures_for(self, windows: list[int]) -> dict[int, Figures]:
        """Sums for several window lengths in one pass over the minutes (rules share them)."""
        longest = max(windows)
        ages: list[list[int] | None] = [None] * longest
        for k, m in self.minutes.items():
            age = self.latest - k
            if age < longest:
                ages[age] = [m.attempts, m.connected, m.duration_s, m.pdd_ms, m.pdd_n]
        out: dict[int, Figures] = {}
        wanted = set(windows)
        a = c = d = p = n = 0
        for age in range(longest):
            row = ages[age]
            if row is not None:
                a += row[0]
                c += row[1]
                d += row[2]
                p += row[3]
                n += row[4]
            if age + 1 in wanted:
                out[age + 1] = Figures(a, c, d, p, n, age + 1)
        return out

    def figures(self, window_minutes: int) -> Figures:
        """Sums of the minutes in (latest - window, latest]."""
        floor = self.latest - window_minutes
        a = c = d = p = n = 0
        for k, m in self.minutes.items():
            if k > floor:
                a += m.attempts
                c += m.connected
                d += m.duration_s
                p += m.pdd_ms
                n += m.pdd_n
        return Figures(a, c, d, p, n, window_minutes)
