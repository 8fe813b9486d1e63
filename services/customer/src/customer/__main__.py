"""`python -m customer`: run the customer service."""

from __future__ import annotations

from shared.runtime import run

from customer.bootstrap import main

if __name__ == "__main__":
    run(main())
