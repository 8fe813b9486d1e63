"""The collector's young collections run while the command worker awaits PostgreSQL, not mid-batch.

Under load the service allocates ~50,000 tracked objects (the gen-0 threshold `shared.runtime`
sets) every 1-2 s, and the collection that follows stops the loop for 10-16 ms wherever it falls:
often in a batch's decisions, delaying every command in flight (docs/performance.md, "fourth
round"). Here, once a fifth of that threshold has been allocated, the worker asks for a collection
right after it has sent its append statement: the collection (2-3 ms at that size) then runs while
PostgreSQL commits, when the loop has nothing else to do for the batch. CPython still chooses the
generation (its rule for full collections is kept): the gen-0 threshold is lowered to 1 for one
allocation, which runs the collector's own scheduling, then put back. Collecting gen 0 EARLY times as
often would make the gen-1 collections EARLY times as frequent too (each counts 20 of gen 0's), and a
gen-1 collection, which walks every object that survived since the last one (the new customers'
states and views in a create phase), stopped the loop for 66 ms: `install` multiplies the gen-1
threshold by EARLY, so they come as often as before - while the worker drives the young collections;
under a light write load gen 1 runs less often, and each run walks more (rare pauses where load is
light). Only on CPython 3.11, whose collector runs at the allocation that crosses the threshold; on
later versions (a deferred, then incremental collector) both calls do nothing.
"""

from __future__ import annotations

import asyncio
import gc
import sys

EARLY = 5  # collect once 1/EARLY of the gen-0 threshold has been allocated
SUPPORTED = sys.version_info[:2] == (3, 11)  # the collector this timing was measured on
_installed = False


class _Probe:
    """An allocation of a tracked object: runs the collector when the gen-0 threshold is 1."""


def _collect() -> None:
    threshold = gc.get_threshold()
    if gc.get_count()[0] < threshold[0] // EARLY:  # one ran meanwhile
        return
    gc.set_threshold(1, *threshold[1:])
    try:
        _Probe()
    finally:
        gc.set_threshold(*threshold)


def collect_soon() -> None:
    """Collect at the loop's next turn, if enough has been allocated (call right before awaiting I/O)."""
    threshold = gc.get_threshold()[0]
    if SUPPORTED and threshold and gc.get_count()[0] >= threshold // EARLY and gc.isenabled():
        asyncio.get_running_loop().call_soon(_collect)


def install() -> None:
    """Keep the gen-1 collections as rare as before (once per process)."""
    global _installed
    if SUPPORTED and not _installed:
        first, second, third = gc.get_threshold()
        gc.set_threshold(first, second * EARLY, third)
        _installed = True
