"""The one way onto NATS: `await bus.connect(url, "customer")` connects as that identity.

Every service, tool, benchmark and test fixture connects here, so each connection carries its
identity's nkey, its own inbox prefix (`_INBOX_<identity>`), the client TLS settings, and logs
what the server refuses (a permissions violation comes on the error callback, not as an exception).

Where the seed comes from, first found wins:
1. `seed=` given by the caller;
2. `PATCHBAY_NATS_SEED` (the seed itself) or `PATCHBAY_NATS_SEED_FILE` (a file holding it): one
   process, one identity (a deployed service, the switch, billing);
3. `PATCHBAY_NATS_CREDENTIALS_DIR/<identity>.nk`, else `<PATCHBAY_DATA_DIR>/credentials/<identity>.nk`
   (what `make run` and the tests make).
Without any, the connection is anonymous, and an authenticated server refuses it.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
from nats.aio.client import Client as NatsClient
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.bus_credentials import seed_path
from shared.bus_identities import PROVISIONER, identity
from shared.bus_signing import SigningClient

log = structlog.get_logger(__name__)

ErrorCallback = Callable[[Exception], Awaitable[None]]


class BusSettings(BaseSettings):
    """Credentials and TLS of NATS connections (`PATCHBAY_*`)."""

    model_config = SettingsConfigDict(env_prefix="PATCHBAY_", extra="ignore")

    data_dir: Path = Path(".patchbay")
    nats_seed: SecretStr | None = None
    nats_seed_file: Path | None = None
    nats_credentials_dir: Path | None = None
    # client TLS (deploy/): the CA that signed the servers' certificates
    nats_tls_ca: Path | None = None
    # public keys trusted to vouch for a command's actor (shared.bus_signing); default: the
    # gateway's and the provisioner's from <credentials dir>/public_keys.json
    nats_command_signers: str | None = None
    # public keys of the services commands go to, `customer=U...,verification=U...` (ADR 21):
    # a command to one of them carries an HMAC instead of an ed25519 signature; default: the
    # keys in <credentials dir>/public_keys.json, where there is one
    nats_service_keys: str | None = None

    def credentials_dir(self) -> Path:
        """Where the seeds of every identity are kept on this machine."""
        return self.nats_credentials_dir or self.data_dir / "credentials"


def seed_for(name: str, settings: BusSettings | None = None) -> str | None:
    """The seed this process connects with as `name` (see the module doc), None if there is none."""
    settings = settings or BusSettings()
    if settings.nats_seed is not None:
        return settings.nats_seed.get_secret_value().strip()
    if settings.nats_seed_file is not None:
        return settings.nats_seed_file.read_text().strip()
    path = seed_path(settings.credentials_dir(), name)
    return path.read_text().strip() if path.is_file() else None


def _servers(url: str | list[str]) -> list[str]:
    if isinstance(url, list):
        return url
    return [part.strip() for part in url.split(",") if part.strip()]


def _tls(settings: BusSettings, servers: list[str]) -> ssl.SSLContext | None:
    if settings.nats_tls_ca is None and not any(s.startswith("tls://") for s in servers):
        return None
    context = ssl.create_default_context(cafile=str(settings.nats_tls_ca) if settings.nats_tls_ca else None)
    return context


def _logging_error_cb(name: str) -> ErrorCallback:
    async def on_error(exc: Exception) -> None:
        text = str(exc)
        if "permissions violation" in text.lower():
            log.error("nats_permission_refused", identity=name, error=text)
        else:
            log.warning("nats_error", identity=name, error=text)
    return on_error


def client_options(name: str, url: str | list[str] = "", *, seed: str | None = None) -> dict[str, Any]:
    """What nats-py's `connect` takes to connect as identity `name`: seed, inbox prefix, TLS, error log.

    For code that makes its `Client()` first (its callbacks need it): `await nc.connect(servers,
    **client_options("customer", servers), max_reconnect_attempts=-1)`.
    """
    ident = identity(name)
    settings = BusSettings()
    seed = seed or seed_for(name, settings)
    options: dict[str, Any] = {
        "inbox_prefix": ident.inbox_prefix, "name": f"patchbay-{name}", "connect_timeout": 5,
        "error_cb": _logging_error_cb(name),
    }
    if seed:
        options["nkeys_seed_str"] = seed
    if (context := _tls(settings, _servers(url))) is not None:
        options["tls"] = context
    return options


def new_client(name: str, *, seed: str | None = None,
               service_keys: dict[str, str] | None = None) -> SigningClient:
    """A not yet connected client of identity `name`: it signs the commands it sends (shared.bus_signing).

    `service_keys`: the services' public keys where they are not this process's settings' (a
    client of another deployment than its own, as a test of a separate stack).
    """
    identity(name)
    client = SigningClient()
    client.signing_seed = seed or seed_for(name)
    client.service_public_keys = service_keys
    return client


async def connect(url: str | list[str], name: str, *, seed: str | None = None,
                  service_keys: dict[str, str] | None = None, **options: Any) -> NatsClient:
    """Connect to NATS as identity `name` (a key of shared.bus_identities.IDENTITIES).

    `options` go to nats-py (`max_reconnect_attempts`, `reconnected_cb`, `error_cb` ...).
    """
    servers = _servers(url)
    client = new_client(name, seed=seed, service_keys=service_keys)
    await client.connect(servers, **(client_options(name, servers, seed=seed) | options))
    return client


async def provision(url: str | list[str], *, replicas: int = 1, seed: str | None = None) -> None:
    """As the provisioner: create the streams or bring them to their declared config."""
    from shared.streams import ensure_streams

    nc = await connect(url, PROVISIONER, seed=seed, max_reconnect_attempts=5)
    try:
        await ensure_streams(nc.jetstream(), replicas=replicas)
    finally:
        await nc.close()
    log.info("nats_provisioned", replicas=replicas)


def provision_blocking(url: str | list[str], *, replicas: int = 1, seed: str | None = None) -> None:
    """`provision` from synchronous code (a server fixture, the stack runner): in a thread of its own."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(provision(url, replicas=replicas, seed=seed))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="nats-provision")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def main(argv: list[str] | None = None) -> int:
    """`python -m shared.bus provision [--replicas N]`: make the streams as the provisioner (a deploy Job)."""
    import argparse
    import os

    from shared.logging import configure_logging

    cli = argparse.ArgumentParser(prog="python -m shared.bus", description=main.__doc__)
    cli.add_argument("command", choices=["provision"])
    cli.add_argument("--replicas", type=int, default=int(os.environ.get("PATCHBAY_STREAM_REPLICAS", "1")))
    args = cli.parse_args(argv)
    configure_logging("provisioner")
    url = os.environ.get("PATCHBAY_NATS_URL", "nats://127.0.0.1:4222")
    asyncio.run(provision(url, replicas=args.replicas))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
