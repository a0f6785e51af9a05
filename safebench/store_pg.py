"""The run store in PostgreSQL: one named run shared by any number of `safebench worker` processes.

Same record contract as `safebench.store.RunStore` (one finished record per (target, item), written in
one transaction), plus what sharing needs: the run's saved configuration, and a work queue of
(target, item) pairs that workers lease with `SELECT ... FOR UPDATE SKIP LOCKED`. A lease expires unless
its worker heartbeats, so the items of a worker killed with -9 go back to the queue by themselves;
putting a record completes its work item in the same transaction. Every timestamp is the database's
`now()`, so the workers' clocks never matter.

Sync psycopg 3 on one connection, guarded by a lock: records are written from one thread, and a caller
may still use `asyncio.to_thread` for any method without two transactions interleaving.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg

from safebench.schema import Result
from safebench.store import RunConflict, differing_fields, fingerprint
from safebench.store_url import StoreError, connect, redact, scrub, unavailable
from safebench.work_pg import Lease, Progress, TargetProgress, WorkerInfo, WorkQueue, new_worker_id

__all__ = [
    "RUN_NAME_PATTERN",
    "SCHEMA_VERSION",
    "Lease",
    "PostgresRunStore",
    "Progress",
    "RunNameError",
    "TargetProgress",
    "WorkerInfo",
    "new_worker_id",
]

T = TypeVar("T")
SCHEMA_VERSION = 1
# No ":" in a run name: checkpoint thread ids are "RUN::TARGET::ITEM" and must split one way only.
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SCHEMA_LOCK = 0x5AFEBE7C00000001  # pg_advisory_xact_lock key: one schema creator at a time
_PAGE = 500  # records per query in `ordered`: memory stays flat on a large run

# `result` is the record's JSON as text, not jsonb: jsonb rejects "\u0000", which a model may emit.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS safebench_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS safebench_runs (
    name TEXT PRIMARY KEY,
    identity TEXT,
    settings JSONB,
    config JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS safebench_work (
    run TEXT NOT NULL REFERENCES safebench_runs (name) ON DELETE CASCADE,
    target TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    done BOOLEAN NOT NULL DEFAULT false,
    leased_by TEXT,
    lease_until TIMESTAMPTZ,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run, target, item_id)
);
CREATE INDEX IF NOT EXISTS safebench_work_open ON safebench_work (run, position) WHERE NOT done;
CREATE INDEX IF NOT EXISTS safebench_work_holder ON safebench_work (run, leased_by) WHERE NOT done;
CREATE TABLE IF NOT EXISTS safebench_records (
    run TEXT NOT NULL REFERENCES safebench_runs (name) ON DELETE CASCADE,
    target TEXT NOT NULL,
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    result TEXT NOT NULL,
    status TEXT NOT NULL,
    written_by TEXT,
    written_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run, target, item_id)
);
CREATE INDEX IF NOT EXISTS safebench_records_order ON safebench_records (run, target, position, item_id);
CREATE TABLE IF NOT EXISTS safebench_workers (
    run TEXT NOT NULL REFERENCES safebench_runs (name) ON DELETE CASCADE,
    worker_id TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    alive_until TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run, worker_id)
);
"""


class RunNameError(StoreError, ValueError):
    """A run name that cannot be stored (empty, too long, or with characters other than A-Z a-z 0-9 . _ -)."""


class PostgresRunStore(WorkQueue):
    """The records, configuration and work queue of the run `run_name` in the database at `url`."""

    def __init__(self, url: str, run_name: str, *, connect_timeout: float = 5.0) -> None:
        if not RUN_NAME_PATTERN.match(run_name or ""):
            raise RunNameError(
                f"run name {run_name!r}: use 1-128 characters from A-Z a-z 0-9 . _ - (starting with a "
                "letter or digit)"
            )
        self.url = url
        self.run = run_name
        self.shown = redact(url)  # what any message says about the store
        self._timeout = connect_timeout
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._call(self._create_schema)

    # -- connection -------------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            # autocommit: every method is one explicit transaction, never an idle open one between calls;
            # no prepared statements, so a transaction-pooling PgBouncer in front works too.
            self._conn = connect(self.url, timeout=self._timeout, autocommit=True, prepare_threshold=None)
        return self._conn

    def _call(self, step: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """Run `step` in one transaction. A connection lost since the last call (server restart,
        network drop) is replaced once and the step run again: every step is safe to repeat."""
        with self._lock:
            for attempt in (1, 2):
                conn = self._connection()
                try:
                    with conn.transaction(), conn.cursor() as cursor:
                        return step(cursor)
                except psycopg.OperationalError as exc:
                    if conn.broken and attempt == 1:
                        self._conn = None
                        continue
                    if conn.broken:
                        raise unavailable(self.url, exc) from None
                    reason = scrub(" ".join(str(exc).split()), self.url)
                    raise StoreError(f"run store {self.shown}: {reason}") from None
            raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PostgresRunStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _create_schema(self, cur: psycopg.Cursor[Any]) -> None:
        # Usually there: read the version without any lock (CREATE INDEX IF NOT EXISTS would take a
        # share lock on the table, briefly stalling running workers' writes).
        row = self._schema_version(cur)
        if row is None or int(row[0]) < SCHEMA_VERSION:
            # Workers starting together on an empty database: the lock makes one create, the others wait
            # and find the tables (CREATE ... IF NOT EXISTS alone can still collide in the catalogs).
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            cur.execute(_SCHEMA)
            cur.execute(
                "INSERT INTO safebench_meta VALUES ('schema_version', %s) ON CONFLICT (key) DO UPDATE "
                "SET value = EXCLUDED.value WHERE safebench_meta.value::int < EXCLUDED.value::int",
                (str(SCHEMA_VERSION),),
            )
            row = self._schema_version(cur)
        if row is not None and int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"run store {self.shown} has schema version {row[0]}, newer than this safebench's "
                f"({SCHEMA_VERSION}): upgrade safebench on this host"
            )

    @staticmethod
    def _schema_version(cur: psycopg.Cursor[Any]) -> tuple[Any, ...] | None:
        cur.execute("SELECT to_regclass('safebench_meta') IS NOT NULL")
        if not (cur.fetchone() or (False,))[0]:
            return None
        cur.execute("SELECT value FROM safebench_meta WHERE key = 'schema_version'")
        return cur.fetchone()

    # -- the run ----------------------------------------------------------------------------------

    def lock(self) -> None:
        """Nothing to hold: many workers share a run by design, and the leases keep them apart."""

    def exists(self) -> bool:
        def step(cur: psycopg.Cursor[Any]) -> bool:
            cur.execute("SELECT 1 FROM safebench_runs WHERE name = %s", (self.run,))
            return cur.fetchone() is not None

        return self._call(step)

    def claim(self, identity: dict[str, Any], *, resume: bool) -> None:
        """Bind the run name to a run identity (dataset, targets, jury, ...); refuse to mix runs, and
        name the settings that differ."""
        wanted = fingerprint(identity)
        settings = json.dumps(identity, sort_keys=True)

        def step(cur: psycopg.Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO safebench_runs (name, identity, settings) VALUES (%s, %s, %s::jsonb) "
                "ON CONFLICT (name) DO NOTHING RETURNING name",
                (self.run, wanted, settings),
            )
            if cur.fetchone() is not None:
                return
            cur.execute(
                "SELECT identity, settings FROM safebench_runs WHERE name = %s FOR UPDATE", (self.run,)
            )
            saved_identity, saved = cur.fetchone() or (None, None)
            if saved_identity is None:  # created by save_config before any claim
                cur.execute(
                    "UPDATE safebench_runs SET identity = %s, settings = %s::jsonb, updated_at = now() "
                    "WHERE name = %s",
                    (wanted, settings, self.run),
                )
                return
            if not resume:
                raise RunConflict(
                    f"run {self.run!r} already exists in {self.shown}: pass --resume to finish it, "
                    "or choose another --run"
                )
            if saved_identity != wanted:
                names = ", ".join(differing_fields(saved, identity)) if saved else "dataset, targets or jury"
                raise RunConflict(
                    f"run {self.run!r} in {self.shown} has different settings ({names}); choose another --run"
                )

        self._call(step)

    def save_config(self, config: dict[str, Any]) -> None:
        """Keep the run's public configuration (what `config.yaml` holds for a local run)."""
        text = json.dumps(config, sort_keys=True, ensure_ascii=False)
        if scrub(text, self.url) != redact(text):  # the store's own password, in any spelling
            raise StoreError("the run configuration contains the run store's password: it is never saved")

        def step(cur: psycopg.Cursor[Any]) -> None:
            cur.execute(
                "INSERT INTO safebench_runs (name, config) VALUES (%s, %s::jsonb) ON CONFLICT (name) "
                "DO UPDATE SET config = EXCLUDED.config, updated_at = now()",
                (self.run, text),
            )

        self._call(step)

    def load_config(self) -> dict[str, Any] | None:
        """The saved configuration, or None when the run does not exist or has none yet."""

        def step(cur: psycopg.Cursor[Any]) -> dict[str, Any] | None:
            cur.execute("SELECT config FROM safebench_runs WHERE name = %s", (self.run,))
            row = cur.fetchone()
            return row[0] if row else None

        return self._call(step)

    # -- records (the RunStore contract) ----------------------------------------------------------

    def statuses(self, target: str) -> dict[str, str]:
        """`{item_id: verdict status}` of the finished records of `target` (its label)."""

        def step(cur: psycopg.Cursor[Any]) -> dict[str, str]:
            cur.execute(
                "SELECT item_id, status FROM safebench_records WHERE run = %s AND target = %s",
                (self.run, target),
            )
            return dict(cur.fetchall())

        return self._call(step)

    def put(self, result: Result, position: int, *, worker_id: str | None = None) -> None:
        """Write the record (replacing any earlier one: one record per run, target and item) and complete
        its work item, in one transaction. A worker whose lease expired may still put: same item, same
        upsert, so the later record wins and nothing is counted twice."""

        def step(cur: psycopg.Cursor[Any]) -> None:
            key = (self.run, result.target, result.item_id)
            cur.execute(
                "INSERT INTO safebench_records (run, target, item_id, position, result, status, written_by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run, target, item_id) DO UPDATE SET "
                "position = EXCLUDED.position, result = EXCLUDED.result, status = EXCLUDED.status, "
                "written_by = EXCLUDED.written_by, written_at = now()",
                (*key, position, result.model_dump_json(), result.verdict.status, worker_id),
            )
            cur.execute(
                "UPDATE safebench_work SET done = true, leased_by = NULL, lease_until = NULL "
                "WHERE run = %s AND target = %s AND item_id = %s",
                key,
            )

        try:
            self._call(step)
        except psycopg.errors.ForeignKeyViolation:
            raise RunConflict(f"run {self.run!r} does not exist in {self.shown}") from None

    def ordered(self, targets: list[str]) -> Iterator[Result]:
        for target in targets:
            after: tuple[int, str] = (-(2**31), "")
            while True:

                def page(
                    cur: psycopg.Cursor[Any], target: str = target, after: tuple[int, str] = after
                ) -> list[Any]:
                    cur.execute(
                        "SELECT position, item_id, result FROM safebench_records "
                        "WHERE run = %s AND target = %s AND (position, item_id) > (%s, %s) "
                        "ORDER BY position, item_id LIMIT %s",
                        (self.run, target, *after, _PAGE),
                    )
                    return cur.fetchall()

                rows = self._call(page)  # the lock is not held while the caller consumes a page
                for _position, _item, payload in rows:
                    yield Result.model_validate_json(payload)
                if len(rows) < _PAGE:
                    break
                after = (rows[-1][0], rows[-1][1])

    def count(self) -> int:
        def step(cur: psycopg.Cursor[Any]) -> int:
            cur.execute("SELECT count(*) FROM safebench_records WHERE run = %s", (self.run,))
            return int(cur.fetchone()[0])  # type: ignore[index]

        return self._call(step)

    def status_counts(self) -> dict[str, int]:
        def step(cur: psycopg.Cursor[Any]) -> dict[str, int]:
            cur.execute(
                "SELECT status, count(*) FROM safebench_records WHERE run = %s GROUP BY status", (self.run,)
            )
            return {status: int(n) for status, n in cur.fetchall()}

        return self._call(step)
