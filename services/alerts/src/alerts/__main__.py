"""`python -m alerts`: run the alerts service."""

from __future__ import annotations

import asyncio

from alerts.bootstrap import main

if __name__ == "__main__":
    asyncio.run(main())
