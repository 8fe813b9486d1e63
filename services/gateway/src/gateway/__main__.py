"""`python -m gateway`: serve the HTTP API with uvicorn."""

from __future__ import annotations

import gc
import sys

import uvicorn
from pydantic import ValidationError
from shared.logging import configure_logging

from gateway.bootstrap import create_app, uvicorn_options
from gateway.settings import GatewaySettings


def main() -> None:
    """Read settings, configure logging, serve until SIGINT/SIGTERM."""
    try:
        settings = GatewaySettings()
    except ValidationError as err:  # a bad setting: say which and why, no traceback
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        sys.exit(f"patchbay gateway: bad settings: {problems}")
    configure_logging("gateway", level=settings.log_level, fmt=settings.log_format)
    app = create_app(settings)
    # as shared.runtime.run does for the other services: a request allocates hundreds of
    # short-lived objects, and at the default threshold (700) the collector took 12% of the
    # gateway's CPU (py-spy, docs/performance.md); the app's routes and models live forever
    gc.set_threshold(50_000, 20, 20)
    gc.freeze()
    uvicorn.run(app, **uvicorn_options(settings))


if __name__ == "__main__":
    main()
