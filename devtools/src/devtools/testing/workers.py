"""How `make test` splits the suite over pytest-xdist workers (`-n 2 --dist loadfile --suite-schedule`).

- A test file stays on one worker (its module fixtures run once), as with plain `loadfile`.
- Two folders are one unit each (`FOLDER_UNITS`): the browser tests (one stack and one chromium
  on one worker, not one of each per worker) and the fault tests (one kill-and-restart test at
  a time: two at once on two cores starve each other's timing).
- The slow kinds of units are handed out first (browser, faults, end-to-end, fuzzing), so that
  the two longest start at once and the last units to start are short ones.

Each worker starts its own nats-server and PostgreSQL (the plugin's session fixtures: free
ports, fresh temp dirs), so two files never share a server. pytest-xdist's own `loadgroup`
cannot do the grouping here: it renames node ids through an attribute pytest 9 no longer reads.
"""

from __future__ import annotations

from typing import Any

import pytest

# folders whose tests go to one worker as one unit (node ids start with the path from the root)
FOLDER_UNITS = {"services/gateway/tests/browser/": "browser", "tests/faults/": "faults"}
# markers of slow tests, slowest kind first: their units are handed out before the rest
SLOW_FIRST = ("browser", "faults", "e2e", "fuzz")


def pytest_addoption(parser: pytest.Parser) -> None:
    """--suite-schedule: the split described above (with -n N and --dist loadfile)."""
    parser.addoption(
        "--suite-schedule", action="store_true", default=False,
        help="with -n N --dist loadfile: the browser tests as one unit, slow files handed out first")


def scheduled(config: pytest.Config) -> bool:
    """True when --suite-schedule is on and the tests are spread by file."""
    return bool(config.getoption("suite_schedule")) and config.getoption("dist", "no") == "loadfile"


def unit_of(nodeid: str) -> str:
    """The unit a test goes to a worker in: its file, or its folder of `FOLDER_UNITS`."""
    path = nodeid.split("::", 1)[0]
    for folder, unit in FOLDER_UNITS.items():
        if path.startswith(folder):
            return unit
    return path


def rank(item: pytest.Item) -> int:
    """Where a test's kind comes in the hand-out order (0 first; pure and integration tests last).

    A test using a `stack` fixture (the whole stack as processes) counts as end-to-end.
    """
    whole_stack = "stack" in getattr(item, "fixturenames", ())
    for index, marker in enumerate(SLOW_FIRST):
        if item.get_closest_marker(marker) or (marker == "e2e" and whole_stack):
            return index
    return len(SLOW_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker of a scheduled run: the units of slow kinds first, each unit's tests together.

    Runs after the conftests' marks. A unit ranks as its slowest-kind test; the sort is stable.
    Every worker sorts alike, and the controller hands the units out in this order.
    """
    if not (hasattr(config, "workerinput") and config.getoption("suite_schedule")):
        return
    ranks: dict[str, int] = {}
    for item in items:
        unit = unit_of(item.nodeid)
        ranks[unit] = min(ranks.get(unit, len(SLOW_FIRST)), rank(item))
    first_seen = {unit: index for index, unit in enumerate(dict.fromkeys(unit_of(i.nodeid) for i in items))}
    items.sort(key=lambda item: (ranks[unit_of(item.nodeid)], first_seen[unit_of(item.nodeid)]))


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The controller's scheduler for --suite-schedule: loadfile, with the units of `unit_of`."""
    if not scheduled(config):
        return None
    from xdist.scheduler import LoadFileScheduling

    class SuiteScheduling(LoadFileScheduling):  # type: ignore[misc]
        """Units from `unit_of`, handed out in collection order (no reordering by size)."""

        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            """Send a unit's tests, every one of them where node ids repeat.

            schemathesis' tests under pytest 9 share one node id per test function (the
            operation is not in it); xdist's own hand-out sends only the first of each id.
            """
            scope, work_unit = self.workqueue.popitem(last=False)
            self.assigned_work.setdefault(node, {})[scope] = work_unit
            wanted = {nodeid for nodeid, done in work_unit.items() if not done}
            collection = self.registered_collections[node]
            node.send_runtest_some([i for i, nodeid in enumerate(collection) if nodeid in wanted])

    config.option.loadscopereorder = False
    return SuiteScheduling(config, log)
