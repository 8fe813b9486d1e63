"""The plugin's markers by need: `servers` from fixtures, pure tests kept pure, browser tests never quietly skipped."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def ini(pytester: pytest.Pytester) -> None:
    """The inner runs' settings, as the project's (asyncio loop scopes)."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = session\n"
                     "markers =\n    faults: f\n    soak: s\n")

SUITE = '''
import pytest
from devtools.embedded import EmbeddedNats

def test_pure():
    assert 1 + 1 == 2

def test_reaches_nats(nats_url):
    pass

@pytest.fixture
def indirect(make_database):
    return make_database

def test_through_another_fixture(indirect):
    pass

@pytest.mark.e2e
def test_whole_stack():
    pass

@pytest.mark.browser
def test_a_page():
    pass
'''


def test_servers_follows_from_fixtures_and_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_suite=SUITE)
    pure = pytester.runpytest("-m", "not servers", "--collect-only", "-q")
    pure.stdout.fnmatch_lines(["test_suite.py::test_pure", "1/5 tests collected (4 deselected)*"])
    only = pytester.runpytest("-m", "servers", "--collect-only", "-q")
    only.stdout.fnmatch_lines(["*4/5 tests collected (1 deselected)*"])
    assert "test_pure" not in only.stdout.str()


def test_a_pure_test_that_starts_a_server_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sneaky='''
from devtools.embedded import EmbeddedNats, EmbeddedPostgres

def test_sneaky(tmp_path):
    EmbeddedNats(tmp_path / "n").start()

def test_sneaky_pg(tmp_path):
    EmbeddedPostgres(tmp_path / "p").start()
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*test_sneaky starts nats-server but is not marked `servers`*",
                                 "*test_sneaky_pg starts PostgreSQL but is not marked `servers`*"])


def test_a_browser_test_without_chromium_fails_saying_how_to_get_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHBAY_CHROMIUM", str(pytester.path / "no-chromium"))
    monkeypatch.delenv("PATCHBAY_SKIP_BROWSER_TESTS", raising=False)
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-k", "a_page")
    result.assert_outcomes(errors=1)  # an error at set-up: the run fails
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*apt-get install chromium*", "*PATCHBAY_SKIP_BROWSER_TESTS=1 make test*"])
    assert "browser tests NOT run" not in result.stdout.str()


def test_opting_out_skips_them_and_the_summary_says_so_last(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHBAY_CHROMIUM", str(pytester.path / "no-chromium"))
    monkeypatch.setenv("PATCHBAY_SKIP_BROWSER_TESTS", "1")
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-k", "a_page or pure")
    result.assert_outcomes(passed=1, skipped=1)
    lines = result.stdout.lines
    notice = next(i for i, line in enumerate(lines) if "browser tests NOT run" in line)
    assert "1 browser tests were skipped because PATCHBAY_SKIP_BROWSER_TESTS is set" in lines[notice + 1]
    assert notice > next(i for i, line in enumerate(lines) if "test_suite.py .s" in line)
    assert lines[-1].startswith("NOTE: 1 browser tests skipped (PATCHBAY_SKIP_BROWSER_TESTS is set)")
    assert "1 passed, 1 skipped" in lines[-2]  # the note comes after the final counts


def test_with_chromium_a_browser_test_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = pytester.path / "chromium"
    fake.write_text("")
    monkeypatch.setenv("PATCHBAY_CHROMIUM", str(fake))
    pytester.makepyfile(test_suite=SUITE)
    pytester.runpytest("-k", "a_page").assert_outcomes(passed=1)
