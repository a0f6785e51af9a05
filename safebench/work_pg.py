"""The work queue of a shared run: (target, item) pairs that `safebench worker` processes lease.

A lease is taken with `SELECT ... FOR UPDATE SKIP LOCKED` (concurrent leasers never get the same item,
and never wait on each other) and lasts `lease_seconds` from the database's `now()` unless its worker
heartbeats: the items of a worker killed with -9 return to the queue when its leases expire, and
resume from their checkpoints. A record put by `PostgresRunStore.put` completes its item in the same
transaction, so "done" and "has a record" never disagree.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import psycopg

from safebench.store import RunConflict

__all__ = ["Lease", "Progress", "TargetProgress", "WorkQueue", "WorkerInfo", "new_worker_id"]

T = TypeVar("T")
_SUBMIT_CHUNK = 5000

_LEASE = """
WITH picked AS (
    SELECT target, item_id FROM safebench_work
    WHERE run = %(run)s AND NOT done
      AND (lease_until IS NULL OR lease_until < now())
      AND (%(targets)s::text[] IS NULL OR target = ANY(%(targets)s::text[]))
    ORDER BY position, target
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE safebench_work AS w
SET leased_by = %(worker)s, lease_until = now() + make_interval(secs => %(secs)s), attempts = attempts + 1
FROM picked
WHERE w.run = %(run)s AND w.target = picked.target AND w.item_id = picked.item_id
RETURNING w.target, w.item_id, w.position, EXISTS (
    SELECT 1 FROM safebench_records AS r
    WHERE r.run = w.run AND r.target = w.target AND r.item_id = w.item_id AND r.status = 'error'
), w.attempts
"""

_ALIVE = """
INSERT INTO safebench_workers (run, worker_id, alive_until)
VALUES (%(run)s, %(worker)s, now() + make_interval(secs => %(secs)s))
ON CONFLICT (run, worker_id) DO UPDATE SET seen_at = now(), alive_until = EXCLUDED.alive_until
"""


_PROGRESS_WORK = """
SELECT target, count(*), count(*) FILTER (WHERE done),
       count(*) FILTER (WHERE NOT done AND lease_until >= now()),
       count(*) FILTER (WHERE NOT done AND (lease_until IS NULL OR lease_until < now()))
FROM safebench_work WHERE run = %s GROUP BY target ORDER BY min(position), target
"""
_PROGRESS_STATUSES = "SELECT target, status, count(*) FROM safebench_records WHERE run = %s GROUP BY 1, 2"
_PROGRESS_WORKERS = """
SELECT k.worker_id,
       (SELECT count(*) FROM safebench_work AS w
        WHERE w.run = k.run AND w.leased_by = k.worker_id AND NOT w.done AND w.lease_until >= now()),
       (SELECT count(*) FROM safebench_records AS r WHERE r.run = k.run AND r.written_by = k.worker_id),
       extract(epoch FROM now() - k.seen_at), extract(epoch FROM k.alive_until - now())
FROM safebench_workers AS k WHERE k.run = %s AND k.alive_until >= now() ORDER BY k.worker_id
"""


class Lease(NamedTuple):
    """One leased (target, item); `retry` is true when it re-runs an `error` record (after
    `requeue_errors`): such an item starts over, so its old checkpoint should be deleted first.
    `attempts` counts this item's leases, this one included: at 1 no worker has touched it before, so
    it cannot have a checkpoint to resume from."""

    target: str
    item_id: str
    position: int
    retry: bool = False
    attempts: int = 1


@dataclass(frozen=True)
class TargetProgress:
    target: str
    total: int
    done: int  # a record is written (of any status)
    leased: int  # held by a live lease now
    pending: int  # waiting for a worker (never leased, or its lease expired)
    statuses: dict[str, int] = field(default_factory=dict)  # records by verdict status


@dataclass(frozen=True)
class WorkerInfo:
    worker_id: str
    leased: int  # items it holds now
    written: int  # records it has written in this run
    seen_seconds_ago: float  # since its last lease or heartbeat, by the database's clock
    alive_for_seconds: float  # until its leases expire unless it heartbeats again


@dataclass(frozen=True)
class Progress:
    targets: list[TargetProgress]
    workers: list[WorkerInfo]  # only live ones (leases not yet expired)

    @property
    def total(self) -> int:
        return sum(t.total for t in self.targets)

    @property
    def done(self) -> int:
        return sum(t.done for t in self.targets)


def new_worker_id() -> str:
    """`host:pid:random`: tells operators where a worker runs, and stays unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WorkQueue:
    """The queue methods of `PostgresRunStore` (a mixin: it supplies `run`, `shown` and `_call`)."""

    run: str
    shown: str

    def _call(self, step: Callable[[psycopg.Cursor[Any]], T]) -> T:  # pragma: no cover - overridden
        raise NotImplementedError

    def submit(self, work: Iterable[tuple[str, str, int]]) -> int:
        """Add (target label, item id, position) work; pairs already there are left as they are, and pairs
        that already have a record are added done. Returns how many were new. Claim the run first."""
        rows = list(work)
        added = 0
        for start in range(0, len(rows), _SUBMIT_CHUNK):
            chunk = rows[start : start + _SUBMIT_CHUNK]

            def step(cur: psycopg.Cursor[Any], chunk: list[tuple[str, str, int]] = chunk) -> int:
                cur.execute(
                    "INSERT INTO safebench_work (run, target, item_id, position, done) "
                    "SELECT %(run)s, w.t, w.i, w.p, EXISTS (SELECT 1 FROM safebench_records AS r "
                    "  WHERE r.run = %(run)s AND r.target = w.t AND r.item_id = w.i) "
                    "FROM unnest(%(t)s::text[], %(i)s::text[], %(p)s::int[]) AS w (t, i, p) "
                    "ON CONFLICT (run, target, item_id) DO NOTHING",
                    {
                        "run": self.run,
                        "t": [t for t, _, _ in chunk],
                        "i": [i for _, i, _ in chunk],
                        "p": [p for _, _, p in chunk],
                    },
                )
                return cur.rowcount

            try:
                added += self._call(step)
            except psycopg.errors.ForeignKeyViolation:
                raise RunConflict(
                    f"run {self.run!r} does not exist in {self.shown}: claim it first"
                ) from None
        return added

    def lease(
        self, worker_id: str, targets: list[str] | None = None, limit: int = 1, lease_seconds: float = 300.0
    ) -> list[Lease]:
        """Lease up to `limit` undone items (of `targets` only, when given) that nobody holds or whose
        lease expired, for `lease_seconds`. Concurrent callers never get the same item."""
        params = {
            "run": self.run,
            "targets": list(targets) if targets else None,
            "limit": max(0, limit),
            "worker": worker_id,
            "secs": float(lease_seconds),
        }

        def step(cur: psycopg.Cursor[Any]) -> list[Lease]:
            cur.execute(_ALIVE, params)
            cur.execute(_LEASE, params)
            leases = [Lease(t, i, p, bool(retry), n) for t, i, p, retry, n in cur.fetchall()]
            return sorted(leases, key=lambda lease: (lease.position, lease.target))

        return self._call(step)

    def heartbeat(self, worker_id: str, lease_seconds: float = 300.0) -> int:
        """Extend every lease `worker_id` holds by `lease_seconds` from now; returns how many it holds
        (fewer than it thinks: some expired and were taken by another worker)."""
        params = {"run": self.run, "worker": worker_id, "secs": float(lease_seconds)}

        def step(cur: psycopg.Cursor[Any]) -> int:
            cur.execute(_ALIVE, params)
            cur.execute(
                "UPDATE safebench_work SET lease_until = now() + make_interval(secs => %(secs)s) "
                "WHERE run = %(run)s AND leased_by = %(worker)s AND NOT done",
                params,
            )
            return cur.rowcount

        return self._call(step)

    def release(self, worker_id: str) -> int:
        """Give back every item `worker_id` holds (a clean shutdown: others need not wait for expiry);
        returns how many. The items keep their checkpoints, so whoever leases them next resumes."""

        def step(cur: psycopg.Cursor[Any]) -> int:
            cur.execute(
                "UPDATE safebench_work SET leased_by = NULL, lease_until = NULL "
                "WHERE run = %s AND leased_by = %s AND NOT done",
                (self.run, worker_id),
            )
            released = cur.rowcount
            cur.execute(
                "DELETE FROM safebench_workers WHERE run = %s AND worker_id = %s", (self.run, worker_id)
            )
            return released

        return self._call(step)

    def requeue_errors(self, targets: list[str] | None = None) -> int:
        """Put the items whose record has status `error` back in the queue (`--retry-errors`); their
        leases come back with `retry=True` and their attempts start again from 0. The error record stays
        until its replacement is put."""

        def step(cur: psycopg.Cursor[Any]) -> int:
            cur.execute(
                "UPDATE safebench_work AS w "
                "SET done = false, leased_by = NULL, lease_until = NULL, attempts = 0 "
                "FROM safebench_records AS r WHERE w.run = %(run)s AND r.run = w.run AND r.target = w.target "
                "AND r.item_id = w.item_id AND r.status = 'error' AND w.done "
                "AND (%(targets)s::text[] IS NULL OR w.target = ANY(%(targets)s::text[]))",
                {"run": self.run, "targets": list(targets) if targets else None},
            )
            return cur.rowcount

        return self._call(step)

    def remaining(self, targets: list[str] | None = None) -> int:
        """Undone work items (leased or not): a worker with nothing to lease stops once this is 0."""

        def step(cur: psycopg.Cursor[Any]) -> int:
            cur.execute(
                "SELECT count(*) FROM safebench_work WHERE run = %(run)s AND NOT done "
                "AND (%(targets)s::text[] IS NULL OR target = ANY(%(targets)s::text[]))",
                {"run": self.run, "targets": list(targets) if targets else None},
            )
            return int(cur.fetchone()[0])  # type: ignore[index]

        return self._call(step)

    def progress(self) -> Progress:
        """Work done, leased and pending per target, and the live workers (for `safebench status`)."""

        def step(cur: psycopg.Cursor[Any]) -> Progress:
            cur.execute(_PROGRESS_WORK, (self.run,))
            work = cur.fetchall()
            cur.execute(_PROGRESS_STATUSES, (self.run,))
            statuses: dict[str, dict[str, int]] = {}
            for target, status, n in cur.fetchall():
                statuses.setdefault(target, {})[status] = int(n)
            cur.execute(_PROGRESS_WORKERS, (self.run,))
            workers = [WorkerInfo(w, int(a), int(b), float(c), float(d)) for w, a, b, c, d in cur.fetchall()]
            targets = [
                TargetProgress(t, int(n), int(d), int(le), int(p), statuses.get(t, {}))
                for t, n, d, le, p in work
            ]
            return Progress(targets=targets, workers=workers)

        return self._call(step)
