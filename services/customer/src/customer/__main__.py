"""`python -m customer`: run the customer service."""

from __future__ import annotations

import asyncio

from customer.bootstrap import main

if __name__ == "__main__":
    asyncio.run(main())
