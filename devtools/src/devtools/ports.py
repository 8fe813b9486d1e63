"""Free ports for our servers, and choosing again when one is taken before the server binds it."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import structlog

log = structlog.get_logger()

# A port we chose with free_port() can be taken by another process (an xdist worker, a client
# socket) before the server binds it: we then choose again, up to this many tries in all.
PORT_ATTEMPTS = 3
_TAKEN = re.compile(r"address already in use", re.IGNORECASE)
_TAKEN_PORT = re.compile(r":(\d+): bind: address already in use", re.IGNORECASE)  # Go's wording
T = TypeVar("T")


class PortInUse(RuntimeError):
    """A server exited because a port it was to listen on is held by another process."""

    def __init__(self, what: str, port: int, line: str, *, fixed: bool) -> None:
        self.port = port
        hint = (f"stop the process holding it (`ss -ltnp | grep :{port}`) or choose another port "
                "(leave it unset to take a free one)") if fixed else \
            "it was free when chosen but another process took it before the server bound it"
        super().__init__(f"{what} cannot listen: port {port} is already in use ({line}); {hint}")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether port can be bound on host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_taken(log_file: Path, offset: int, what: str, port: int, *, fixed: bool) -> PortInUse | None:
    """PortInUse when the server's log (after offset) says an address was in use; else None."""
    try:
        with log_file.open("rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    line = next((line.strip() for line in text.splitlines() if _TAKEN.search(line)), None)
    if line is None:
        return None
    named = _TAKEN_PORT.search(line)  # nats-server names the address; PostgreSQL only its host
    return PortInUse(what, int(named.group(1)) if named else port, line, fixed=fixed)


def retry_taken_ports(start: Callable[[], T], what: str, attempts: int = PORT_ATTEMPTS) -> T:
    """Call start() - which chooses its ports afresh - again while a port it chose was taken."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except PortInUse as exc:
            if attempt == attempts:
                raise
            log.warning("port taken before the server bound it; choosing another", server=what,
                        port=exc.port, attempt=attempt, attempts=attempts)
    raise AssertionError("unreachable")
