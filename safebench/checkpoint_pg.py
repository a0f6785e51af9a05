"""LangGraph checkpoints in the run store's PostgreSQL (langgraph-checkpoint-postgres), shared by workers.

Threads are named `RUN::TARGET::ITEM` (`thread_id`), so every run keeps its in-flight items apart in the
same `checkpoints` tables, and an item re-leased after its worker died resumes from its checkpoint
whichever host leases it. `AsyncPostgresSaver.setup()` creates tables and indexes (some with
`CREATE INDEX CONCURRENTLY`) and is not safe to run twice at once, so it runs under an advisory lock,
and only when the saved migrations are behind this version's.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from safebench.store_url import CONNECT_TIMEOUT, unavailable, validate_store_url

__all__ = ["SETUP_LOCK", "postgres_checkpointer", "thread_id"]

SETUP_LOCK = 0x5AFEBE7C00000002  # advisory lock key of checkpoint-table setup (the store's is ...01)
_SETUP_POLL = 0.2
# What AsyncPostgresSaver.from_conn_string gives its connection: the saver relies on all three.
_SAVER_KWARGS: dict[str, Any] = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}


def thread_id(run: str, target: str, item_id: str) -> str:
    """The checkpoint thread of one (target, item) of a named run."""
    return f"{run}::{target}::{item_id}"


async def _setup_once(url: str, timeout: float) -> None:
    async with await psycopg.AsyncConnection.connect(
        url, connect_timeout=max(1, round(timeout)), **_SAVER_KWARGS
    ) as conn:
        saver = AsyncPostgresSaver(conn)
        if await _migrated(conn, len(saver.MIGRATIONS)):
            return
        # Poll pg_try_advisory_lock rather than wait in pg_advisory_lock: a waiting statement holds a
        # snapshot, and setup's CREATE INDEX CONCURRENTLY in the lock holder would wait for it (deadlock).
        while not await _try_lock(conn):
            await asyncio.sleep(_SETUP_POLL)
        try:
            if not await _migrated(conn, len(saver.MIGRATIONS)):
                await saver.setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


async def _try_lock(conn: psycopg.AsyncConnection[Any]) -> bool:
    row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (SETUP_LOCK,))).fetchone()
    return bool(row and row["ok"])


async def _migrated(conn: psycopg.AsyncConnection[Any], migrations: int) -> bool:
    cursor = await conn.execute("SELECT to_regclass('checkpoint_migrations') IS NOT NULL AS present")
    row = await cursor.fetchone()
    if not row or not row["present"]:
        return False
    cursor = await conn.execute("SELECT coalesce(max(v), -1) AS v FROM checkpoint_migrations")
    row = await cursor.fetchone()
    return bool(row) and int(row["v"]) >= migrations - 1


@asynccontextmanager
async def postgres_checkpointer(
    url: str, *, max_connections: int = 4, timeout: float = CONNECT_TIMEOUT
) -> AsyncIterator[AsyncPostgresSaver]:
    """An `AsyncPostgresSaver` on a small connection pool (so a worker's concurrent items do not queue
    behind one connection), with its tables set up. Connection failures are one line without the
    password (`StoreUnavailable`); size `max_connections` like the worker's `--concurrency`."""
    validate_store_url(url)
    try:
        await _setup_once(url, timeout)
    except psycopg.OperationalError as exc:
        raise unavailable(url, exc) from None
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=max(1, max_connections),
        kwargs={**_SAVER_KWARGS, "connect_timeout": max(1, round(timeout)), "application_name": "safebench"},
        open=False,
        timeout=max(timeout, 30.0),  # waiting for a free connection, not connecting
    )
    try:
        await pool.open(wait=True, timeout=timeout)
    except Exception as exc:  # PoolTimeout: the server went away between setup and here
        await pool.close()
        raise unavailable(url, exc) from None
    try:
        yield AsyncPostgresSaver(conn=pool)
    finally:
        await pool.close()
