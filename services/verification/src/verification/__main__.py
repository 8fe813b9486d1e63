"""`python -m verification`: run the verification service."""

from __future__ import annotations

import asyncio

from verification.bootstrap import main

if __name__ == "__main__":
    asyncio.run(main())
