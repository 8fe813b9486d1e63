"""A stand-in service for stack tests: records its start in PATCHBAY_DATA_DIR, then idles."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def main() -> None:
    """Append our pid to <data_dir>/worker_starts, then wait for SIGTERM (or exit if asked)."""
    starts = Path(os.environ["PATCHBAY_DATA_DIR"]) / "worker_starts"
    with starts.open("a") as out:
        out.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
