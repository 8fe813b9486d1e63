"""Demo mode's data dir (`PATCHBAY_DEMO=1 make run`): its own, never mixed with a normal stack's.

The seed and the simulated switch are `python -m patchbay_cli.demo_switch` (docs/console.md
"Demo mode"), started by the stack runner once the gateway answers.
"""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(".patchbay-demo")
MARKER = "demo-mode"  # a file in the data dir: this data dir belongs to demo mode


def demo_data_dir(data_dir: Path, *, demo: bool, explicit: bool) -> Path:
    """The data dir to use; SystemExit with a clear message when demo and non-demo data would mix."""
    if demo and not explicit:
        data_dir = DEMO_DIR
    marked = (data_dir / MARKER).is_file()
    used = data_dir.is_dir() and any(p.name != "run" for p in data_dir.iterdir())
    if demo and used and not marked:
        raise SystemExit(f"PATCHBAY_DEMO=1: {data_dir} holds a non-demo stack's data; demo mode never "
                         f"mixes into it. Unset PATCHBAY_DATA_DIR (demo uses {DEMO_DIR}/) or name an "
                         "empty one.")
    if not demo and marked:
        raise SystemExit(f"{data_dir} holds demo data (made by PATCHBAY_DEMO=1); run with PATCHBAY_DEMO=1, "
                         "or choose another PATCHBAY_DATA_DIR.")
    if demo:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / MARKER).write_text("made by PATCHBAY_DEMO=1 make run; never mixed with other data\n")
    return data_dir
