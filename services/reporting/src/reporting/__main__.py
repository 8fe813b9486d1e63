"""`python -m reporting`: run the service; `python -m reporting rebuild ...`: rebuild projections."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["rebuild"]:
        from reporting.rebuild_cli import main as rebuild

        sys.exit(rebuild(sys.argv[2:]))
    from shared.runtime import run

    from reporting.bootstrap import main

    run(main())
