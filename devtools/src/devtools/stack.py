"""Run the whole stack on one machine: `python -m devtools.stack run` (or `servers`)."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import importlib.util
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit, urlunsplit

import psutil
import structlog
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from shared.bus import BusSettings, provision_blocking, seed_for
from shared.bus_credentials import seed_path
from shared.bus_identities import PROVISIONER, identity
from shared.secrets import Sealer
from shared.stack_file import remove_stack_file, write_stack_file

from devtools.db_roles import provision_roles
from devtools.embedded import (
    EmbeddedNats,
    EmbeddedPostgres,
    die_with_parent,
    free_port,
    port_is_free,
    retry_taken_ports,
    stop_stale_nats,
    stop_stale_postgres,
)
from devtools.embedded_cluster import EmbeddedNatsCluster
from devtools.server_watch import Watched, watch_servers

log = structlog.get_logger()

SERVICES = ["customer", "verification", "notifier", "reporting", "alerts", "gateway"]
HTTP_SERVICE = "gateway"
DEMO_SWITCH = "patchbay_cli.demo_switch"  # started by name: devtools imports no cli code
READY_TIMEOUT = 180.0  # a loaded 2-core machine starts six services slowly
STOP_TIMEOUT = 10.0
OPS_PORT_BASE = 9101  # /metrics, /healthz, /readyz of each service: 9101, 9102, ...
MAX_BACKOFF = 30.0


class StackSettings(BaseSettings):
    """Settings of the local stack runner (PATCHBAY_* environment variables)."""

    model_config = SettingsConfigDict(env_prefix="PATCHBAY_")

    data_dir: Path = Path(".patchbay")
    nats_url: str | None = None
    database_url: str | None = None
    admin_token: SecretStr | None = None
    secret_key: SecretStr | None = None
    http_port: int = 8000
    http_host: str = "127.0.0.1"
    # embedded NATS nodes: 1 = a single server; 3 = a JetStream cluster, streams with 3 replicas
    nats_cluster: int = Field(default=1, ge=1, le=5)
    # replicas of the streams made on servers of your own (PATCHBAY_NATS_URL)
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # how long the gateway may take to answer /readyz (a loaded machine starts slowly)
    ready_timeout_s: float = Field(default=READY_TIMEOUT, gt=0)
    # demo mode (docs/console.md "Demo"): its own data dir, a seeded carrier, a simulated switch
    demo: bool = False


def redact_url(url: str) -> str:
    """Return url with any password masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _stored_secret(path: Path, make: Callable[[], str]) -> str:
    """A secret kept in the data dir: made once (mode 0600), read back on later starts."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = make()
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value


def load_admin_token(settings: StackSettings) -> str:
    """The configured admin token, else the one stored in the data dir (created once, 0600)."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    return _stored_secret(settings.data_dir / "admin_token", lambda: secrets.token_urlsafe(32))


def load_secret_key(settings: StackSettings) -> str:
    """The key that seals secrets at rest (PATCHBAY_SECRET_KEY), else one kept in the data dir."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return _stored_secret(settings.data_dir / "secret_key", Sealer.new_key)


def _is_our_child(proc: psutil.Process, name: str) -> bool:
    """True when proc runs `python -m name`."""
    try:
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return any(cmdline[i:i + 2] == ["-m", name] for i in range(1, len(cmdline) - 1))


def stop_stale_children(run_dir: Path) -> list[int]:
    """Stop service processes recorded in run_dir by a crashed run; return their pids."""
    stopped: list[int] = []
    for pid_file in run_dir.glob("*.pid"):
        try:
            proc = psutil.Process(int(pid_file.read_text().strip()))
        except (OSError, ValueError, psutil.NoSuchProcess):
            proc = None
        if proc is not None and _is_our_child(proc, pid_file.stem):
            log.warning("stopping stale service", service=pid_file.stem, pid=proc.pid)
            proc.terminate()
            if psutil.wait_procs([proc], timeout=STOP_TIMEOUT)[1]:
                proc.kill()
                proc.wait(5)
            stopped.append(proc.pid)
        pid_file.unlink(missing_ok=True)
    return stopped


def _lock_data_dir(run_dir: Path, stack: ExitStack) -> None:
    """Hold an exclusive lock so a second runner cannot take this data dir's servers as stale."""
    handle: IO[str] = stack.enter_context((run_dir / "stack.lock").open("w"))
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another stack is already running on {run_dir.parent}") from None


ANY_FREE_PORT = "DEVTOOLS_ANY_FREE_PORT"  # set by the test plugin: parallel stacks never race for 4222


def _port(preferred: int) -> int:
    """The preferred port if free, else any free one (always any with DEVTOOLS_ANY_FREE_PORT=1)."""
    if os.environ.get(ANY_FREE_PORT) != "1" and port_is_free(preferred):
        return preferred
    return free_port()


def cluster_ports(size: int) -> list[int] | None:
    """A cluster's client ports: 4222... (unchecked), or any free ones with DEVTOOLS_ANY_FREE_PORT=1."""
    return None if os.environ.get(ANY_FREE_PORT) == "1" else [4222 + i for i in range(size)]


def credentials_dir(settings: StackSettings) -> Path:
    """Where the NATS identities' seeds are kept: PATCHBAY_NATS_CREDENTIALS_DIR, else the data dir's."""
    return BusSettings(data_dir=settings.data_dir).credentials_dir().resolve()


def start_servers(settings: StackSettings, stack: ExitStack,
                  watched: list[Watched] | None = None) -> tuple[str, str]:
    """Start embedded NATS and PostgreSQL unless URLs are configured; return both URLs.

    Each embedded server is added to `watched` (restarted on death by `watch_servers`). NATS
    authenticates every client (shared.bus_identities); the streams are made by the provisioner
    before any service starts (with servers of your own too, when the provisioner's seed is at
    hand).
    """
    watched = [] if watched is None else watched
    nats_url, database_url = settings.nats_url, settings.database_url
    creds = credentials_dir(settings)
    if nats_url is None and settings.nats_cluster > 1:
        size = settings.nats_cluster
        cluster = EmbeddedNatsCluster(settings.data_dir / "nats-cluster", size=size,
                                      ports=cluster_ports(size), sync_always=True,
                                      credentials_dir=creds)
        stack.callback(cluster.stop)
        nats_url = cluster.start()
        watched += [Watched(f"nats node {i + 1}", node, f"http://127.0.0.1:{port}")
                    for i, (node, port) in enumerate(zip(cluster.nodes, cluster.monitor_ports, strict=True))]
    elif nats_url is None:
        store = settings.data_dir / "nats"
        stop_stale_nats(store)  # first, so that a stale server does not hold our port

        def start_nats() -> tuple[EmbeddedNats, int]:
            monitor = _port(8222)
            nats = EmbeddedNats(store, port=_port(4222), sync_always=True, credentials_dir=creds,
                                extra_config=f'http: "127.0.0.1:{monitor}"\n')  # monitoring endpoint
            stack.callback(nats.stop)
            nats.start()
            return nats, monitor

        # a port taken between our choice and the server's bind: choose both again
        nats, monitor = retry_taken_ports(start_nats, "nats-server")
        nats_url = nats.url
        watched.append(Watched("nats-server", nats, f"http://127.0.0.1:{monitor}"))
    elif (seed := seed_for(PROVISIONER, BusSettings(data_dir=settings.data_dir))) is not None:
        provision_blocking(nats_url, replicas=settings.stream_replicas, seed=seed)
    else:
        log.warning("streams not provisioned", hint="no provisioner seed: provision them yourself "
                    "(python -m shared.bus_credentials; docs/security.md)")
    if database_url is None:
        data = settings.data_dir / "pg"
        stop_stale_postgres(data)

        def start_postgres() -> EmbeddedPostgres:
            postgres = EmbeddedPostgres(data, port=_port(5432))
            stack.callback(postgres.stop)
            postgres.start()
            return postgres

        postgres = retry_taken_ports(start_postgres, "PostgreSQL")
        database_url = postgres.url
        watched.append(Watched("PostgreSQL", postgres))
    return nats_url, database_url


class Supervisor:
    """Keeps one `python -m <service>` child per service running, restarting with backoff."""

    def __init__(
        self, run_dir: Path, env: dict[str, str], per_service: dict[str, dict[str, str]] | None = None
    ) -> None:
        self._run_dir = run_dir
        self._env = env
        self._per_service = per_service or {}
        self._stopping = asyncio.Event()
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def add_env(self, name: str, env: dict[str, str]) -> None:
        """Extra environment for one child started later."""
        self._per_service[name] = self._per_service.get(name, {}) | env

    def start(self, names: Sequence[str]) -> None:
        """Spawn and watch each named service."""
        self._tasks += [asyncio.create_task(self._keep_running(n), name=n) for n in names]

    async def _spawn(self, name: str) -> asyncio.subprocess.Process:
        """Start one service child and record its pid."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", name, env=self._env | self._per_service.get(name, {}),
            stdin=asyncio.subprocess.DEVNULL, process_group=0, preexec_fn=die_with_parent(signal.SIGTERM))
        (self._run_dir / f"{name}.pid").write_text(f"{proc.pid}\n")
        log.info("service started", service=name, pid=proc.pid)
        return proc

    async def _keep_running(self, name: str) -> None:
        """Run name until stopping; restart it with exponential backoff when it dies."""
        backoff = 0.5
        while not self._stopping.is_set():
            started = time.monotonic()
            proc = self._procs[name] = await self._spawn(name)
            code = await proc.wait()
            (self._run_dir / f"{name}.pid").unlink(missing_ok=True)
            if self._stopping.is_set():
                return
            if time.monotonic() - started > MAX_BACKOFF:
                backoff = 0.5
            log.warning("service exited; restarting", service=name, code=code, delay=backoff)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def stop(self) -> None:
        """SIGTERM every child, wait up to STOP_TIMEOUT, then SIGKILL."""
        self._stopping.set()
        await asyncio.gather(*(self._stop_one(p) for p in self._procs.values()))
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    async def _stop_one(proc: asyncio.subprocess.Process) -> None:
        """Stop one child politely, then firmly."""
        if proc.returncode is not None:
            return
        with suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            with suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _answers_200(url: str) -> bool:
    """One readiness probe: does url answer 200?"""
    try:
        import httpx
    except ImportError:
        import urllib.request

        def probe() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=1) as reply:
                    return int(reply.status) == 200
            except OSError:
                return False

        return await asyncio.to_thread(probe)
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            return (await client.get(url)).status_code == 200
    except httpx.HTTPError:
        return False


async def wait_ready(
    url: str, stop: asyncio.Event, timeout: float = READY_TIMEOUT,  # noqa: ASYNC109 (a budget)
) -> bool:
    """Poll url until it answers 200 (True), or until timeout or stop (False)."""
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        if await _answers_200(url):
            return True
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
    return False


def banner(*, http: str | None, nats_url: str, database_url: str, token: str,
           ops: dict[str, str] | None = None, watched: Sequence[Watched] = (),
           credentials: Path | None = None) -> str:
    """The text shown once the stack is up."""
    lines = ["", "Patchbay is running."]
    if http is not None:
        lines += [f"  gateway:   {http}", f"  console:   {http}/console/", f"  portal:    {http}/portal/",
                  f"  API docs:  {http}/docs"]
    lines += [f"  NATS:      {nats_url}", f"  database:  {redact_url(database_url)}"]
    if credentials is not None:  # what the outside parties connect with (docs/security.md)
        lines += [f"  NATS credentials of the {name}:{'':<{8 - len(name)}}{seed_path(credentials, name)}"
                  f"  (inbox prefix {identity(name).inbox_prefix})" for name in ("switch", "billing")]
    lines += [f"  metrics:   {name:<13}{url}" for name, url in (ops or {}).items()]
    lines += [f"  monitoring: {w.name:<12}{w.monitor}" for w in watched if w.monitor]
    if watched:
        lines.append(f"  embedded servers ({', '.join(w.name for w in watched)}) are watched: "
                     "one that dies is restarted on the same data")
    lines += [f"  admin token: {token}", "Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


async def run_stack(settings: StackSettings, *, services: Sequence[str] = SERVICES,
                    http_service: str = HTTP_SERVICE, servers_only: bool = False) -> int:
    """Start servers and services, supervise them until SIGINT/SIGTERM; return an exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    run_dir = settings.data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        _lock_data_dir(run_dir, stack)
        stop_stale_children(run_dir)
        watched: list[Watched] = []
        nats_url, database_url = start_servers(settings, stack, watched)
        watcher = asyncio.create_task(watch_servers(watched, stop))
        stack.callback(watcher.cancel)
        stack.callback(remove_stack_file, settings.data_dir)
        record = {"nats_url": nats_url, "database_url": database_url,
                  "data_dir": str(settings.data_dir.resolve()),
                  "nats_monitoring": [w.monitor for w in watched if w.monitor],
                  "nats_credentials": str(credentials_dir(settings)),
                  "stream_replicas": int(os.environ.get("PATCHBAY_STREAM_REPLICAS") or (
                      min(3, settings.nats_cluster) if settings.nats_url is None else 1))}
        if servers_only:
            write_stack_file(settings.data_dir, record)
            print(f"PATCHBAY_NATS_URL={nats_url}\nPATCHBAY_DATABASE_URL={database_url}",
                  flush=True)
            await stop.wait()
            return 0
        token = load_admin_token(settings)
        env = os.environ | {
            "PATCHBAY_NATS_URL": nats_url, "PATCHBAY_DATABASE_URL": database_url,
            "PATCHBAY_ADMIN_TOKEN": token, "PATCHBAY_SECRET_KEY": load_secret_key(settings),
            "PATCHBAY_HTTP_PORT": str(settings.http_port),
            "PATCHBAY_HTTP_HOST": settings.http_host,
            "PATCHBAY_DATA_DIR": str(settings.data_dir.resolve())}
        if settings.demo:  # the demo's SMS catcher is plain http on 127.0.0.1 (patchbay_cli.demo_mail)
            env["PATCHBAY_ALLOW_INSECURE_PROVIDERS"] = "1"
        creds = credentials_dir(settings)
        if settings.nats_cluster > 1 and settings.nats_url is None:
            env.setdefault("PATCHBAY_STREAM_REPLICAS", str(min(3, settings.nats_cluster)))
        names = [n for n in services if importlib.util.find_spec(n) is not None]
        if missing := [n for n in services if n not in names]:
            log.warning("services not installed; skipped", services=missing)
        ops = {name: _port(OPS_PORT_BASE + i) for i, name in enumerate(names)}
        # each service gets its own identity's seed only, and (embedded PostgreSQL) a role of its own
        roles = await provision_roles(database_url) if settings.database_url is None else {}
        supervisor = Supervisor(run_dir, env, {
            name: {"PATCHBAY_OPS_PORT": str(port),
                   "PATCHBAY_NATS_SEED_FILE": str(seed_path(creds, name)),
                   **({"PATCHBAY_DATABASE_URL": roles[name]} if name in roles else {})}
            for name, port in ops.items()})
        supervisor.start(names)
        try:
            http = f"http://{settings.http_host}:{settings.http_port}"
            if http_service in names:
                ready = await wait_ready(f"{http}/readyz", stop, settings.ready_timeout_s)
                if not ready and not stop.is_set():
                    log.error("gateway not ready in time", url=f"{http}/readyz")
                    return 1
            shown = http if http_service in names else None
            metrics = {n: f"http://{settings.http_host}:{p}/metrics" for n, p in ops.items()}
            write_stack_file(settings.data_dir, record | {"http": shown, "metrics": metrics})
            if settings.demo and shown is not None:
                _start_demo(supervisor, shown, creds)
            print(banner(http=shown, nats_url=nats_url, database_url=database_url, token=token,
                         ops=metrics, watched=watched,
                         credentials=creds if seed_path(creds, "switch").is_file() else None), flush=True)
            if settings.demo:
                print(f"Demo mode: data in {settings.data_dir}/ (delete it to start over). The simulated "
                      "switch seeds the carrier first (about a minute: watch for `demo seeded`), "
                      f"then places calls; open {shown}/console/ with the admin token.\n", flush=True)
            await stop.wait()
        finally:
            log.info("stopping")
            await supervisor.stop()
    return 0


def _start_demo(supervisor: Supervisor, http: str, creds: Path) -> None:
    """Start the demo's switch (it seeds the carrier first, once per data dir) beside the services."""
    supervisor.add_env(DEMO_SWITCH, {"PATCHBAY_NATS_SEED_FILE": str(seed_path(creds, "switch")),
                                     "PATCHBAY_DEMO_HTTP": http})
    supervisor.start([DEMO_SWITCH])


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m devtools.stack", description=__doc__)
    parser.add_argument("command", choices=["run", "servers"])
    parser.add_argument("--services", default=",".join(SERVICES),
                        help="comma-separated service modules to run (default: all)")
    parser.add_argument("--http-service", default=HTTP_SERVICE,
                        help="the service whose /readyz tells that the stack is up")
    args = parser.parse_args(argv)
    services = [s for s in args.services.split(",") if s]
    settings = StackSettings()
    if settings.demo or (settings.data_dir / "demo-mode").is_file():
        from devtools.demo import demo_data_dir

        explicit = "data_dir" in settings.model_fields_set
        settings.data_dir = demo_data_dir(settings.data_dir, demo=settings.demo, explicit=explicit)
    return asyncio.run(run_stack(settings, services=services, http_service=args.http_service,
                                 servers_only=args.command == "servers"))


if __name__ == "__main__":
    sys.exit(main())
