"""A stand-in service for stack tests: serves /readyz on PATCHBAY_HTTP_HOST:PATCHBAY_HTTP_PORT."""

from __future__ import annotations

import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    """Answers 200 on /readyz with the environment it was given."""

    def do_GET(self) -> None:
        """Reply 200 on /readyz, 404 elsewhere."""
        body = os.environ.get("PATCHBAY_NATS_URL", "").encode()
        self.send_response(200 if self.path == "/readyz" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""


def main() -> None:
    """Serve until SIGTERM."""
    server = ThreadingHTTPServer(
        (os.environ["PATCHBAY_HTTP_HOST"], int(os.environ["PATCHBAY_HTTP_PORT"])), _Handler
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()


if __name__ == "__main__":
    main()
