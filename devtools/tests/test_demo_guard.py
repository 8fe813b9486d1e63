"""Demo mode keeps its own data dir: demo and normal data never mix."""

from __future__ import annotations

from pathlib import Path

import pytest
from devtools.demo import DEMO_DIR, MARKER, demo_data_dir


def test_demo_without_a_data_dir_uses_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert demo_data_dir(Path(".patchbay"), demo=True, explicit=False) == DEMO_DIR
    assert (tmp_path / DEMO_DIR / MARKER).is_file()
    assert not (tmp_path / ".patchbay").exists()


def test_demo_refuses_a_data_dir_that_holds_a_normal_stack(tmp_path: Path) -> None:
    (tmp_path / "nats").mkdir()
    with pytest.raises(SystemExit, match="non-demo"):
        demo_data_dir(tmp_path, demo=True, explicit=True)
    assert not (tmp_path / MARKER).exists()


def test_a_normal_run_refuses_a_demo_data_dir(tmp_path: Path) -> None:
    assert demo_data_dir(tmp_path / "d", demo=True, explicit=True) == tmp_path / "d"
    with pytest.raises(SystemExit, match="PATCHBAY_DEMO=1"):
        demo_data_dir(tmp_path / "d", demo=False, explicit=True)
    assert demo_data_dir(tmp_path / "d", demo=True, explicit=True) == tmp_path / "d"  # demo again: fine
