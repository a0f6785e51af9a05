"""LangGraph checkpoints of a run in RUN_DIR (`checkpoints.sqlite`), the embedded counterpart of
`safebench.checkpoint_pg`: in-flight items only, scratch once every item has its record.

Tuned for what they must survive: a kill -9 of the process, not a power cut. In WAL mode
`synchronous=NORMAL` commits without an fsync, and a committed transaction still survives the death of
the process that wrote it (only an OS crash can lose the last ones), so the finished target answers and
juror opinions an interrupted run resumes from stay durable at a fraction of the cost of FULL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

__all__ = ["CHECKPOINTS_FILE", "discard_checkpoints", "sqlite_checkpointer", "started_threads"]

CHECKPOINTS_FILE = "checkpoints.sqlite"


@asynccontextmanager
async def sqlite_checkpointer(run_dir: Path) -> AsyncIterator[AsyncSqliteSaver]:
    async with aiosqlite.connect(str(run_dir / CHECKPOINTS_FILE)) as conn:
        saver = AsyncSqliteSaver(conn)
        await saver.setup()  # WAL mode and the tables
        await conn.execute("PRAGMA synchronous=NORMAL")
        yield saver


async def started_threads(saver: AsyncSqliteSaver) -> set[str]:
    """The threads with a checkpoint: only their items can resume; every other item starts fresh
    without asking the saver for a state it does not have."""
    async with saver.conn.execute("SELECT DISTINCT thread_id FROM checkpoints") as cursor:
        return {row[0] async for row in cursor}


def discard_checkpoints(run_dir: Path) -> None:
    """Remove the checkpoints of a run whose every queued item has its record: nothing left to resume."""
    for suffix in ("", "-wal", "-shm"):
        (run_dir / f"{CHECKPOINTS_FILE}{suffix}").unlink(missing_ok=True)
