"""The run store: an embedded SQLite database in RUN_DIR holding one finished record per (target, item).

In-flight work lives in LangGraph's SQLite checkpointer (`checkpoints.sqlite`); a record lands here
only when its deliberation has finished, in one transaction, so a crash never leaves half a record.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from safebench.schema import Result

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    target TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    result TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'decided',
    PRIMARY KEY (target, item_id)
);
"""
LOCK_FILE = ".lock"


class RunConflict(ValueError):
    """RUN_DIR holds another run, or a run that --resume must be asked for."""


def fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def differing_fields(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Top-level settings whose values differ (`targets`, `jury`, `modality`, ...)."""
    return sorted(k for k in saved.keys() | wanted.keys() if saved.get(k) != wanted.get(k))


class RunStore:
    FILE = "run.sqlite"

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / self.FILE
        # Records are written from one asyncio thread; WAL keeps readers (reports) from blocking it.
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

        self._lock: int | None = None

    def close(self) -> None:
        self._db.close()
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    def lock(self) -> None:
        """Hold RUN_DIR for this process: a second process on the same run dir stops with one line.
        An advisory flock, so the kernel releases it when the holder dies, even by kill -9."""
        fd = os.open(self.path.parent / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunConflict(
                f"{self.path.parent} is in use by another safebench process (pid {holder}); "
                "wait for it to finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock = fd

    def claim(self, identity: dict[str, Any], *, resume: bool) -> None:
        """Bind this store to a run identity (dataset, targets, jury, ...); refuse to mix runs, and
        name the settings that differ."""
        wanted = fingerprint(identity)
        rows = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN ('identity', 'settings')"))
        if "identity" not in rows:
            self._db.execute("INSERT INTO meta VALUES ('identity', ?)", (wanted,))
            self._db.execute(
                "INSERT INTO meta VALUES ('settings', ?)", (json.dumps(identity, sort_keys=True),)
            )
            return
        if not resume:
            raise RunConflict(
                f"{self.path.parent} already holds a run: pass --resume to finish it, or choose another --out"
            )
        if rows["identity"] != wanted:
            saved = json.loads(rows.get("settings", "{}"))
            names = ", ".join(differing_fields(saved, identity)) if saved else "dataset, targets or jury"
            raise RunConflict(
                f"{self.path.parent} holds a run with different settings ({names}); choose another --out"
            )

    def statuses(self, target: str) -> dict[str, str]:
        """`{item_id: verdict status}` of the finished records of `target` (its label)."""
        rows = self._db.execute("SELECT item_id, status FROM records WHERE target = ?", (target,))
        return dict(rows.fetchall())

    def put(self, result: Result, position: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?)",
            (result.target, result.item_id, position, result.model_dump_json(), result.verdict.status),
        )

    def ordered(self, targets: list[str]) -> Iterator[Result]:
        for target in targets:
            cursor = self._db.execute(
                "SELECT result FROM records WHERE target = ? ORDER BY position", (target,)
            )
            for (payload,) in cursor:
                yield Result.model_validate_json(payload)

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def status_counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT status, COUNT(*) FROM records GROUP BY status").fetchall())
