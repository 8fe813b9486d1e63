"""The progress of a long operator command (a rebuild): a bar on stderr, or a log line now and then."""

from __future__ import annotations

import sys
import time
from types import TracebackType

import structlog
from tqdm import tqdm

log = structlog.get_logger(__name__)


class ProgressBar:
    """Called as `bar(done, total)`, as often as the work reports; closed at the end (or used as `with`).

    Shown: a tqdm bar on stderr, its total moving as the work finds more to do. Not shown
    (`--no-progress`, a log collector instead of a terminal): a `progress` log line every
    `log_every_s` seconds, when given.
    """

    def __init__(self, desc: str, unit: str, *, shown: bool = True, log_every_s: float | None = None) -> None:
        self.desc = desc
        self.log_every_s = log_every_s
        self._logged = time.monotonic()
        self._bar = tqdm(desc=desc, unit=unit, unit_scale=True, disable=not shown, file=sys.stderr,
                         dynamic_ncols=True)

    def __call__(self, done: int, total: int) -> None:
        """Where the work is: `done` of `total` (the total may grow)."""
        if not self._bar.disable:
            self._bar.total = total
            self._bar.n = done
            self._bar.refresh()
        elif self.log_every_s is not None and time.monotonic() - self._logged >= self.log_every_s:
            self._logged = time.monotonic()
            log.info("progress", task=self.desc, done=done, total=total)

    def close(self) -> None:
        """Leave the bar as it ended."""
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        self.close()
