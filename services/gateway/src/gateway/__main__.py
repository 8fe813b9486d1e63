"""`python -m gateway`: serve the HTTP API with uvicorn."""

from __future__ import annotations

import uvicorn
from shared.logging import configure_logging

from gateway.bootstrap import create_app, uvicorn_options
from gateway.settings import GatewaySettings


def main() -> None:
    """Read settings, configure logging, serve until SIGINT/SIGTERM."""
    settings = GatewaySettings()
    configure_logging("gateway", level=settings.log_level, fmt=settings.log_format)
    uvicorn.run(create_app(settings), **uvicorn_options(settings))


if __name__ == "__main__":
    main()
