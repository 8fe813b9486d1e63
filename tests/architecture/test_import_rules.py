"""The architecture rules of [tool.importlinter] hold, and a deliberate violation breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = (
    "Services are independent of each other",
    "shared imports no service",
    "Domain code imports no driver (asyncpg, nats, fastapi, httpx)",
    "No service (nor shared) imports devtools",
)


def lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with the project's configuration, over the packages importable from `cwd`."""
    env = {**os.environ, "NO_COLOR": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(cwd / "pyproject.toml")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=90, check=False,
    )


def test_the_project_keeps_every_import_rule() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in result.stdout, result.stdout
    assert "0 broken" in result.stdout


def _copy_of_the_tree(tmp: Path) -> Path:
    """Every package's source copied under tmp/src (which then shadows the installed ones)."""
    src = tmp / "src"
    shutil.copytree(ROOT / "shared" / "src" / "shared", src / "shared")
    shutil.copytree(ROOT / "devtools" / "src" / "devtools", src / "devtools")
    for service in ("customer", "gateway", "notifier", "reporting", "verification"):
        shutil.copytree(ROOT / "services" / service / "src" / service, src / service)
    shutil.copy(ROOT / "pyproject.toml", tmp / "pyproject.toml")
    return src


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("reporting/application/audit_queries.py", "from customer.domain.evolve import fold", CONTRACTS[0]),
        ("gateway/entrypoints/reporting_api.py", "import reporting.entrypoints.nats_api", CONTRACTS[0]),
        ("shared/asyncapi.py", "import customer.entrypoints.nats_api", CONTRACTS[1]),
        ("customer/domain/decide.py", "import asyncpg", CONTRACTS[2]),
        ("notifier/domain/__init__.py", "import httpx", CONTRACTS[2]),
        ("verification/bootstrap.py", "from devtools import embedded", CONTRACTS[3]),
        ("shared/rpc.py", "import devtools.stack", CONTRACTS[3]),
    ],
)
def test_a_deliberate_violation_fails_the_check(tmp_path: Path, module: str, line: str, contract: str) -> None:
    src = _copy_of_the_tree(tmp_path)
    target = src / module
    target.write_text(target.read_text() + f"\n{line}  # a deliberate violation\n")
    result = lint_imports(tmp_path, pythonpath=src)
    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout
    broken = [name for name in CONTRACTS if f"{name} BROKEN" in result.stdout]
    assert broken == [contract], result.stdout
