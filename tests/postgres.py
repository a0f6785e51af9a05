"""A real PostgreSQL for the run-store tests: a private cluster in a temp dir on a free loopback port.

`initdb` makes the cluster with password (scram-sha-256) login, so the redaction tests have a real
secret to hide; the `postgres` server runs as a child of the test process (not through `pg_ctl`, whose
daemon would outlive a killed pytest). initdb and postgres refuse to run as root: as root they run as
the `postgres` system user (or `nobody`), which then owns the temp dir.

Binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/<major>/bin`) or PATH; set
`SAFEBENCH_PG_BIN` to point elsewhere. When none is found the tests are skipped locally and fail in CI
(`CI` set), like tests/llama_server.py: CI installs PostgreSQL, so a skip there would hide a broken
install.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import pytest
from server_process import LOG_TAIL_CHARS, ServerProcess, free_port
from server_process import unavailable as _unavailable

__all__ = [
    "PostgresServer",
    "find_bin_dir",
    "postgres_server",
    "postgres_url",
    "require_driver",
]

DATABASE = "safebench"
USER = "safebench"
READY_TIMEOUT = 30.0
# Small on purpose: the machine has 2 cores and 24 GiB shared with the rest of the suite.
SETTINGS = {
    "shared_buffers": "16MB",
    "max_connections": "60",
    "work_mem": "2MB",
    "maintenance_work_mem": "16MB",
    "max_wal_size": "128MB",
    "autovacuum": "on",
    "log_min_messages": "warning",
    "log_connections": "off",
    "dynamic_shared_memory_type": "posix",
}


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where scripts/setup-tests.sh installs PostgreSQL."""
    _unavailable(reason, ci_needs="PostgreSQL must be installed")


DRIVER_MODULES = ("psycopg", "psycopg_pool", "langgraph.checkpoint.postgres")


def require_driver() -> None:
    """Call at the top of a test module, before importing safebench.store_pg: without the PostgreSQL
    driver packages the module is skipped locally, and fails in CI."""
    missing = [name for name in DRIVER_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (psycopg[binary], langgraph-checkpoint-postgres)"
    _unavailable(reason, ci_needs="they must be installed", allow_module_level=True)


def find_bin_dir() -> Path | None:
    """The directory holding initdb and postgres: SAFEBENCH_PG_BIN, the newest Debian major, or PATH."""
    candidates: list[Path] = []
    if os.environ.get("SAFEBENCH_PG_BIN"):
        candidates.append(Path(os.environ["SAFEBENCH_PG_BIN"]))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        majors = sorted((p for p in debian.iterdir() if p.name.isdigit()), key=lambda p: -int(p.name))
        candidates += [p / "bin" for p in majors]
    if shutil.which("initdb"):
        # /usr/local/bin/initdb here is a symlink into the Debian tree: postgres must sit beside it.
        candidates.append(Path(os.path.realpath(shutil.which("initdb") or "")).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    return None


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged account to run the server as when we are root (None: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as")


class PostgresServer(ServerProcess):
    """A throw-away PostgreSQL cluster on 127.0.0.1 as a context manager; always stopped on exit."""

    # "Immediate" shutdown: no shutdown checkpoint, whose fsync of every file costs seconds, for a
    # cluster that is deleted next.
    stop_signal = signal.SIGQUIT
    # If pytest is killed, the kernel stops the server too (set after the uid change, which clears it).
    death_signal = signal.SIGQUIT

    def __init__(self, bin_dir: Path, *, ready_timeout: float = READY_TIMEOUT) -> None:
        self.bin_dir = bin_dir
        self.ready_timeout = ready_timeout
        # An '@', a '/' and a '%' so the URL must percent-encode it, as real passwords often need.
        self.password = f"pw@{secrets.token_hex(8)}/%x"
        self.port = 0
        # Short and under /tmp: the unix socket path must stay under 107 bytes whatever TMPDIR is.
        self.root = Path(tempfile.mkdtemp(prefix="sbpg-", dir="/tmp" if Path("/tmp").is_dir() else None))
        super().__init__(self.root / "postgres.log")
        self.data = self.root / "data"
        self._user = _run_as()

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{DATABASE}"

    def url_for(self, *, user: str = USER, password: str | None = None, port: int | None = None) -> str:
        """A URL to this server with other credentials or port (for the failure tests)."""
        secret = self.password if password is None else password
        return f"postgresql://{user}:{quote(secret, safe='')}@127.0.0.1:{port or self.port}/{DATABASE}"

    @property
    def pid(self) -> int:
        """The postmaster's process id (the benchmarks read its CPU time)."""
        assert self._process is not None, "the server is not running"
        return self._process.pid

    def _popen_kwargs(self) -> dict[str, Any]:
        # cwd: the server's user may not be allowed into the directory pytest runs in.
        kwargs: dict[str, Any] = {"stdin": subprocess.DEVNULL, "cwd": self.root}
        if self._user is not None:
            kwargs |= {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}
        return kwargs

    def _initdb(self) -> None:
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self._user is not None:
            os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
        pwfile.chmod(0o600)
        command = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",  # a throw-away cluster: skip initdb's fsync of every file (the server keeps fsync)
        ]
        done = subprocess.run(command, capture_output=True, timeout=120, **self._popen_kwargs())
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({done.returncode}): {done.stderr.decode(errors='replace')[-LOG_TAIL_CHARS:]}"
            )

    def start(self) -> PostgresServer:
        try:
            self._initdb()
            for _attempt in range(3):  # a port taken between free_port() and bind: try another
                if self._spawn():
                    break
            else:
                raise RuntimeError(f"PostgreSQL did not start; log {self.log_path}:\n{self.log_tail()}")
            self._create_database()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self) -> bool:
        self.port = free_port()
        command = [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port)]
        command += ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}"]
        for key, value in SETTINGS.items():
            command += ["-c", f"{key}={value}"]
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if self._user is not None:
            os.chown(self.log_path, self._user.pw_uid, self._user.pw_gid)
        try:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=self.preexec_fn(),
                **self._popen_kwargs(),
            )
        finally:
            os.close(log)
        return self._wait_ready()

    def _wait_ready(self) -> bool:
        import psycopg

        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        admin = self.url_for().rsplit("/", 1)[0] + "/postgres"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                if "already in use" in self.log_tail():
                    return False
                raise RuntimeError(
                    f"postgres exited with code {self._process.returncode}; log {self.log_path}:\n"
                    f"{self.log_tail()}"
                )
            try:
                with psycopg.connect(admin, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL not ready after {self.ready_timeout:.0f} s; log:\n{self.log_tail()}")

    def _create_database(self) -> None:
        import psycopg

        admin = self.url_for().rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the whole session (tests keep apart by run name); skipped without binaries."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        unavailable("PostgreSQL server binaries not found (apt-get install postgresql, or SAFEBENCH_PG_BIN)")
    if importlib.util.find_spec("psycopg") is None:
        unavailable("psycopg is not installed (pip install 'psycopg[binary]')")
    with PostgresServer(bin_dir) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """postgresql://safebench:PASSWORD@127.0.0.1:PORT/safebench of the session's real PostgreSQL."""
    return postgres_server.url
