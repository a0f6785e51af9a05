"""What the real-server test fixtures share: tests/postgres.py (a throw-away PostgreSQL cluster) and
tests/llama_server.py (llama-cpp-python's OpenAI-compatible server).

Each runs its server as a child of the test process on a free loopback port, stopped when the
kernel sees pytest die (PDEATHSIG), and skips its tests on a developer machine without the server but
fails them in CI (`CI` set), where a skip would hide a broken install.

Imported as `server_process` by tests/postgres.py (which is imported with tests/ on sys.path) and as
`tests.server_process` by tests/llama_server.py (a `tests.` plugin), each the way its own callers find it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import ClassVar, NoReturn, Self

import pytest

__all__ = [
    "LOG_TAIL_CHARS",
    "STOP_TIMEOUT",
    "ServerProcess",
    "free_port",
    "in_ci",
    "unavailable",
]

STOP_TIMEOUT = 10.0
LOG_TAIL_CHARS = 3000
_PR_SET_PDEATHSIG = 1
# libc is loaded in the parent: the child, already the postgres user (tests/postgres.py), may not read
# Python's files.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def unavailable(reason: str, *, ci_needs: str, allow_module_level: bool = False) -> NoReturn:
    """Skip locally; fail in CI with "(CI is set, so {ci_needs})" appended: CI installs the server."""
    __tracebackhide__ = True  # the skip is reported at the caller, as before this helper was shared
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so {ci_needs})", pytrace=False)
    pytest.skip(reason, allow_module_level=allow_module_level)


def free_port() -> int:
    # The port is released before the server binds it; a collision in that window shows up as an early
    # exit with "address already in use" in the log, which the caller's `start` handles.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent(death_signal: signal.Signals) -> None:  # pragma: no cover - runs in the child
    # Runs between fork and exec, after any uid change (which clears it): if pytest itself is killed
    # (SIGKILL, OOM), the kernel stops the server too instead of leaving it holding a port and cores.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, death_signal)


class ServerProcess:
    """A server subprocess as a context manager: `start` (the subclass's) on enter, `stop` on exit.

    Subclasses set `log_path` (where the server's output goes) in their `__init__`, run the server with
    `preexec_fn=self.preexec_fn()` into `self._process`, and may change `stop_signal` (sent first by
    `stop`, SIGKILL follows after STOP_TIMEOUT) and `death_signal` (sent by the kernel if pytest dies).
    """

    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    death_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def preexec_fn(self) -> Callable[[], None] | None:
        """Popen's preexec_fn: ask for `death_signal` when the parent dies (Linux only)."""
        return functools.partial(_die_with_parent, self.death_signal) if sys.platform == "linux" else None

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(self.stop_signal)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
