"""The run store: an embedded SQLite database in RUN_DIR holding one finished record per (target, item).

In-flight work lives in LangGraph's SQLite checkpointer (`checkpoints.sqlite`); a record lands here
only when its deliberation has finished, in one transaction, so a crash never leaves half a record.
"""

from __future__ import annotations

import hashlib
import json
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
    PRIMARY KEY (target, item_id)
);
"""


class RunConflict(ValueError):
    """RUN_DIR holds another run, or a run that --resume must be asked for."""


def fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


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

    def close(self) -> None:
        self._db.close()

    def claim(self, identity: dict[str, Any], *, resume: bool) -> None:
        """Bind this store to a run identity (dataset, targets, jury); refuse to mix runs."""
        wanted = fingerprint(identity)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('identity', ?)", (wanted,))
            return
        if not resume:
            raise RunConflict(
                f"{self.path.parent} already holds a run: pass --resume to finish it, or choose another --out"
            )
        if row[0] != wanted:
            raise RunConflict(
                f"{self.path.parent} holds a run with a different dataset, targets or jury; "
                "choose another --out"
            )

    def done(self, target: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT item_id FROM records WHERE target = ?", (target,))}

    def put(self, result: Result, position: int) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
            (result.target, result.item_id, position, result.model_dump_json()),
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
