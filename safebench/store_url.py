"""Run-store URLs (`postgresql://user:password@host:port/db`): validate, redact, check, connect.

The password is needed to connect and nowhere else: everything this module says about a URL (errors,
`redact`) carries `***` in its place, and `scrub` removes it from any other text (a driver message, a
traceback line) before that text is shown, logged or saved.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "CONNECT_TIMEOUT",
    "ENV_VAR",
    "SCHEMES",
    "StoreError",
    "StoreURLError",
    "StoreUnavailable",
    "check_store",
    "connect",
    "redact",
    "scrub",
    "store_url",
    "unavailable",
    "validate_store_url",
]

ENV_VAR = "SAFEBENCH_STORE"  # where workers read the URL, so the password stays off the command line
SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT = 5.0  # seconds: an unreachable host is one error line soon, not a hang
HIDDEN = "***"
# libpq's own defaults name the program in pg_stat_activity; keepalives notice a vanished server.
_SESSION = {
    "application_name": "safebench",
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
# Greedy up to the last "@" of the word: an unencoded "@" in a password must not leave its tail showing.
_NETLOC_PASSWORD = re.compile(r"(?P<head>://[^:/@?#\s]*:)(?P<pw>\S*)(?=@)")
# A URL parameter, or a libpq "key=value" conninfo word (someone may paste one in place of a URL).
_QUERY_PASSWORD = re.compile(r"(?P<head>(?:^|[?&\s])password\s*=\s*)(?P<pw>[^&#\s]*)", re.IGNORECASE)


class StoreError(Exception):
    """A run store cannot be used: the message is one line, safe to print (no password)."""


class StoreURLError(StoreError, ValueError):
    """The store URL is not a PostgreSQL URL libpq accepts."""


class StoreUnavailable(StoreError):
    """The database did not answer, refused the login, or dropped the connection."""


def redact(url: str) -> str:
    """`url` with its password (in the user part or a `password=` parameter) replaced by `***`. Never
    fails: a string that is not a URL still loses anything that looks like a password."""
    text = _NETLOC_PASSWORD.sub(lambda m: m["head"] + HIDDEN, url)
    return _QUERY_PASSWORD.sub(lambda m: m["head"] + HIDDEN, text)


def _passwords(url: str) -> set[str]:
    found: set[str] = set()
    for pattern in (_NETLOC_PASSWORD, _QUERY_PASSWORD):
        for match in pattern.finditer(url):
            if match["pw"]:
                found |= {match["pw"], unquote(match["pw"]), quote(unquote(match["pw"]), safe="")}
    return {p for p in found if p and p != HIDDEN}


def scrub(text: str, url: str | None = None) -> str:
    """`text` without any password: URLs in it are redacted, and so is every spelling (raw, encoded) of
    the password of `url` (a driver message may quote it outside any URL)."""
    text = redact(text)
    for secret in sorted(_passwords(url or ""), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _psycopg() -> Any:
    """psycopg, imported only for a run store: it comes with the `postgres` extra, and a plain install
    (everything in RUN_DIR) must not need it."""
    try:
        import psycopg
        import psycopg.conninfo
    except ImportError:
        raise StoreError(
            "a PostgreSQL run store needs the postgres extra: pip install 'safebench[postgres]'"
        ) from None
    return psycopg


def validate_store_url(url: str) -> dict[str, Any]:
    """The connection parameters of a PostgreSQL store URL, or StoreURLError saying what is wrong."""
    shown = redact(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        # Only the scheme is quoted back: what follows may be anything, a password included.
        what = f"a {scheme}:// URL" if scheme.isalnum() else "not a URL"
        raise StoreURLError(
            f"the run store is {what}: use postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (or postgres://)"
        )
    psycopg = _psycopg()
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise StoreURLError(f"run store {shown}: {_one_line(scrub(str(exc), url))}") from None
    for port in str(params.get("port", "")).split(",") if params.get("port") else []:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise StoreURLError(f"run store {shown}: port {port!r} is not a number from 1 to 65535")
    if not _database_named(url):
        raise StoreURLError(f"run store {shown}: name the database (postgresql://USER@HOST/DB)")
    return params


def _database_named(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.path.strip("/")) or "dbname=" in parts.query


def store_url(given: str | None = None) -> str | None:
    """The store URL to use: the option given, else the `SAFEBENCH_STORE` environment variable."""
    url = given if given else os.environ.get(ENV_VAR, "").strip()
    return url or None


def connect(url: str, *, timeout: float = CONNECT_TIMEOUT, **kwargs: Any) -> psycopg.Connection[Any]:
    """A psycopg 3 connection to the store, or StoreURLError / StoreUnavailable as one safe line."""
    validate_store_url(url)
    psycopg = _psycopg()
    try:
        return psycopg.connect(url, connect_timeout=max(1, round(timeout)), **_SESSION, **kwargs)
    except psycopg.Error as exc:
        raise unavailable(url, exc) from None


def unavailable(url: str, exc: BaseException) -> StoreUnavailable:
    """The one-line error for a failed connection or a dropped one; libpq's message, password removed."""
    # libpq writes one line per address it tried plus a hint: all of it, joined, fits one line.
    reason = _one_line(str(exc)) or type(exc).__name__
    reason = re.sub(r"^connection failed:\s*", "", reason)
    return StoreUnavailable(f"cannot reach the run store {redact(url)}: {_one_line(scrub(reason, url))}")


def check_store(url: str, *, timeout: float = CONNECT_TIMEOUT) -> None:
    """Connect once and run `SELECT 1`: the preflight of `evaluate --store`, `worker`, `status`."""
    psycopg = _psycopg()
    with connect(url, timeout=timeout) as conn:
        try:
            conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise unavailable(url, exc) from None
