"""What a test needs, said by markers: `servers` follows from its fixtures, browsers never skip quietly.

- A test is marked `servers` when any fixture it uses (directly or through others) is one that
  starts or reaches a real server, or when it is marked `e2e`, `faults`, `soak` or `browser`.
  So `pytest -m "not servers"` runs only pure tests; a pure test that starts a server anyway
  fails (PATCHBAY_PURE_TEST is set while it runs: `devtools.embedded` refuses to start, in child
  processes too).
- Browser tests fail, not skip, when chromium is missing, with how to get it; setting
  PATCHBAY_SKIP_BROWSER_TESTS=1 skips them instead, and the run's summary says so at the end.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SKIP_BROWSER = "PATCHBAY_SKIP_BROWSER_TESTS"
PURE_TEST = "PATCHBAY_PURE_TEST"
# fixtures that start or reach nats-server / PostgreSQL (the plugin's and the suites' own)
SERVER_FIXTURES = frozenset({
    "nats_url", "database_url", "make_database", "nats", "embedded_tmp_path", "module_nats_url", "stack",
})
IMPLIES_SERVERS = ("e2e", "faults", "soak", "browser")
_skipped_browser = pytest.StashKey[list[str]]()


def chromium() -> Path:
    """The chromium the browser tests drive: PATCHBAY_CHROMIUM, else Debian's."""
    return Path(os.environ.get("PATCHBAY_CHROMIUM", "/usr/bin/chromium"))


def opted_out_of_browsers() -> bool:
    """True when the user said to skip the browser tests."""
    return os.environ.get(SKIP_BROWSER, "").strip().lower() in {"1", "true", "yes"}


def needs_servers(item: pytest.Item) -> bool:
    """Whether a test needs real servers, from its fixtures and markers."""
    fixtures = set(getattr(item, "fixturenames", ()))
    return bool(fixtures & SERVER_FIXTURES) or any(item.get_closest_marker(m) for m in IMPLIES_SERVERS)


def pytest_configure(config: pytest.Config) -> None:
    """The markers this plugin reads or sets."""
    config.addinivalue_line("markers", "browser: drives the web pages in headless chromium")
    config.addinivalue_line("markers", "servers: needs a real nats-server and PostgreSQL")
    config.addinivalue_line("markers", "e2e: drives the whole stack as processes")
    config.stash[_skipped_browser] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `servers` what needs them (runs after the conftests' marks, before -m deselects)."""
    for item in items:
        if not item.get_closest_marker("servers") and needs_servers(item):
            item.add_marker(pytest.mark.servers)


def browser_refusal() -> str:
    """How to get chromium, or how to opt out, for a browser test that cannot run."""
    return (f"the browser tests need chromium at {chromium()} and it is not there.\n"
            f"  Install it:  apt-get install chromium   (or set PATCHBAY_CHROMIUM to its path)\n"
            f"  Or skip them knowingly:  {SKIP_BROWSER}=1 make test   (the summary says they did not run)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Browser tests: fail or (opted out) skip without chromium; pure tests: no servers allowed."""
    if item.get_closest_marker("browser") and not chromium().exists():
        if opted_out_of_browsers():
            item.config.stash[_skipped_browser].append(item.nodeid)
            pytest.skip(f"{SKIP_BROWSER} is set and {chromium()} is missing")
        pytest.fail(browser_refusal(), pytrace=False)
    if item.get_closest_marker("servers"):
        os.environ.pop(PURE_TEST, None)
    else:
        os.environ[PURE_TEST] = item.nodeid


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """The pure test is over."""
    os.environ.pop(PURE_TEST, None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Repeat, last thing on screen, that browser tests were skipped by request."""
    skipped = config.stash.get(_skipped_browser, [])
    if skipped:
        terminalreporter.section("browser tests NOT run", sep="=", yellow=True, bold=True)
        terminalreporter.line(
            f"{len(skipped)} browser tests were skipped because {SKIP_BROWSER} is set and {chromium()} is "
            f"missing: this run does not cover the web pages. apt-get install chromium, then run again.",
            yellow=True, bold=True)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """And once more below the final counts, where everyone looks."""
    skipped = config.stash.get(_skipped_browser, [])
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if skipped and reporter is not None:
        reporter.write_line(f"NOTE: {len(skipped)} browser tests skipped ({SKIP_BROWSER} is set): "
                            "the web pages were not tested", yellow=True, bold=True)
