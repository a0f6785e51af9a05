"""Debian's chromium, headless, for the HTML report's browser tests: the DOM after the page's script
ran, a screenshot, and the requests the page made when served from a loopback HTTP server.

Skipped when /usr/bin/chromium is missing, except under CI (env var CI set), which installs it: there a
missing browser fails the tests instead of silently skipping them.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
TIMEOUT_S = 60
# Root in a container needs --no-sandbox; the rest keeps the browser from calling home (component
# updates, sync, safe browsing lists) so that the only network traffic is what the page asks for.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)
# Virtual time runs the page's script (and its timers) to completion before the DOM is dumped.
VIRTUAL_TIME_MS = 10000


def require_chromium() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing but CI is set: CI must install chromium")
    pytest.skip(f"{CHROMIUM} not installed")


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    browser = require_chromium()
    profile = tempfile.mkdtemp(prefix="sb-chromium-")
    try:
        return subprocess.run(
            [str(browser), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(url: str) -> str:
    """The serialised DOM of `url` after its script ran (a file:// URL or http://)."""
    result = _run([f"--virtual-time-budget={VIRTUAL_TIME_MS}", "--dump-dom", url])
    if result.returncode != 0 or "<html" not in result.stdout:
        raise AssertionError(f"chromium --dump-dom failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def screenshot(url: str, png: Path, *, width: int = 1400, height: int = 2000) -> Path:
    png = Path(png)
    result = _run(
        [
            f"--virtual-time-budget={VIRTUAL_TIME_MS}",
            f"--screenshot={png}",
            f"--window-size={width},{height}",
            url,
        ]
    )
    if result.returncode != 0 or not png.is_file():
        raise AssertionError(f"chromium --screenshot failed ({result.returncode}): {result.stderr[-2000:]}")
    return png


def file_url(path: Path, fragment: str = "") -> str:
    return Path(path).resolve().as_uri() + fragment


@dataclass
class Served:
    """A folder served on 127.0.0.1; `requests` lists every path asked for, in order."""

    root: Path
    port: int
    requests: list[str] = field(default_factory=list)

    def url(self, name: str, fragment: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{name}{fragment}"


@contextmanager
def serve(root: Path) -> Iterator[Served]:
    """Serve `root` from a thread; the handler records each request path (any method) before
    answering, so a request the page makes for anything at all is seen."""
    served = Served(Path(root), 0)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(served.root), **kwargs)  # type: ignore[arg-type]

        def handle_one_request(self) -> None:
            super().handle_one_request()
            if getattr(self, "path", None) and getattr(self, "command", None):
                served.requests.append(self.path)

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Elements(HTMLParser):
    """Every start tag of a document with its attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
