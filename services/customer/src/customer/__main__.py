"""`python -m customer`: run the customer service; `python -m customer rebuild ledger ...`: rebuild it."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    if sys.argv[1:3] == ["rebuild", "ledger"]:
        from customer.ledger_rebuild_cli import main as rebuild

        sys.exit(rebuild(sys.argv[3:], prog="python -m customer rebuild ledger"))
    from shared.runtime import run

    from customer.bootstrap import main

    run(main())
