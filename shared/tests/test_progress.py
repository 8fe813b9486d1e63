"""The progress bar of the operator commands (the rebuilds): a bar when shown, log lines when not."""

from __future__ import annotations

import pytest
from shared.progress import ProgressBar
from structlog.testing import capture_logs


def test_a_shown_bar_follows_done_and_a_growing_total(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBar("rebuild audit", "ev") as bar:
        bar(5000, 12000)
        bar(12000, 15000)  # the catch-up found more
        bar(15000, 15000)
    err = capsys.readouterr().err
    assert "rebuild audit" in err
    assert "15.0k/15.0k" in err.replace(" ", "")


def test_a_hidden_bar_prints_nothing_and_logs_at_its_interval(capsys: pytest.CaptureFixture[str]) -> None:
    with capture_logs() as logs, ProgressBar("rebuild ledger", "msg", shown=False, log_every_s=0.0) as bar:
        bar(10, 20)
        bar(20, 20)
    assert capsys.readouterr().err == ""
    assert [(e["event"], e["task"], e["done"], e["total"]) for e in logs] == [
        ("progress", "rebuild ledger", 10, 20), ("progress", "rebuild ledger", 20, 20)]


def test_a_hidden_bar_without_an_interval_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    with capture_logs() as logs, ProgressBar("rebuild summaries", "ev", shown=False) as bar:
        bar(1, 2)
    assert capsys.readouterr().err == "" and logs == []
