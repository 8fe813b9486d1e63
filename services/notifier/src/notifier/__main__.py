"""`python -m notifier`: run the notifier."""

from __future__ import annotations

import asyncio

from notifier.bootstrap import main

if __name__ == "__main__":
    asyncio.run(main())
