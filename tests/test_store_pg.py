"""The PostgreSQL run store, work queue and checkpointer against a real PostgreSQL (tests/postgres.py).

No database is mocked: each test works on its own run name in the session's cluster (or its own
database, where schema creation itself is under test).
"""

from __future__ import annotations

import contextlib
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from postgres import PostgresServer, require_driver

require_driver()  # before anything that imports psycopg

import psycopg  # noqa: E402

from safebench.schema import Result, Verdict  # noqa: E402
from safebench.store import RunConflict, RunStore  # noqa: E402
from safebench.store_pg import Lease, PostgresRunStore, RunNameError  # noqa: E402
from safebench.store_url import (  # noqa: E402
    StoreError,
    StoreUnavailable,
    StoreURLError,
    check_store,
    redact,
    scrub,
    validate_store_url,
)

IDENTITY: dict[str, Any] = {
    "dataset": "sample",
    "targets": [{"label": "a"}, {"label": "b"}],
    "jury": {"size": 3},
    "limit": None,
    "modality": "text",
    "voice": None,
}


def run_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def result(target: str, item: str, status: str = "decided", response: str | None = "no") -> Result:
    return Result(
        item_id=item,
        target=target,
        scenario="s",
        category="c",
        query=f"query {item}",
        response=response,
        verdict=Verdict(status=status, unsafe=False if status == "decided" else None),  # type: ignore[arg-type]
    )


@pytest.fixture
def store(postgres_url: str) -> Any:
    with PostgresRunStore(postgres_url, run_name()) as opened:
        opened.claim(IDENTITY, resume=False)
        yield opened


def assert_secret_free(text: str, server: PostgresServer) -> None:
    assert server.password not in text
    assert quote(server.password, safe="") not in text


# -- records ----------------------------------------------------------------------------------------


def test_records_round_trip_and_order_like_the_sqlite_store(store: PostgresRunStore, tmp_path: Path) -> None:
    sqlite = RunStore(tmp_path)
    rng = random.Random(7)
    puts = [(t, f"item-{i:03d}", i) for t in ("a", "b") for i in range(40)]
    rng.shuffle(puts)
    odd = {"a": "NUL \x00 and émoji 🙂 and a quote ' \"", "b": None}
    for target, item, position in puts:
        status = rng.choice(["decided", "decided", "error", "hung", "blocked"])
        record = result(target, item, status, odd[target] if position == 5 else f"answer {item}")
        store.put(record, position)
        sqlite.put(record, position)
    # Putting again replaces: one record per (run, target, item).
    again = result("a", "item-003", "hung", "second try")
    store.put(again, 3)
    sqlite.put(again, 3)

    assert list(store.ordered(["a", "b"])) == list(sqlite.ordered(["a", "b"]))
    assert list(store.ordered(["b"])) == list(sqlite.ordered(["b"]))
    assert next(r for r in store.ordered(["a"]) if r.item_id == "item-005").response == odd["a"]
    assert store.statuses("a") == sqlite.statuses("a")
    assert store.count() == sqlite.count() == 80
    assert store.status_counts() == sqlite.status_counts()
    sqlite.close()


def test_ordered_pages_through_a_large_target(store: PostgresRunStore) -> None:
    for position in range(1203):  # more than two pages of 500
        store.put(result("a", f"i{position}"), position)
    assert [r.item_id for r in store.ordered(["a"])] == [f"i{p}" for p in range(1203)]


def test_another_run_sees_none_of_these_records(store: PostgresRunStore, postgres_url: str) -> None:
    store.put(result("a", "x"), 0)
    with PostgresRunStore(postgres_url, run_name()) as other:
        assert other.count() == 0 and other.statuses("a") == {} and not other.exists()


def test_claim_refuses_another_identity_naming_the_fields(store: PostgresRunStore, postgres_url: str) -> None:
    with PostgresRunStore(postgres_url, store.run) as second:
        with pytest.raises(RunConflict, match=r"already exists.*--resume"):
            second.claim(IDENTITY, resume=False)
        second.claim(IDENTITY, resume=True)  # the same run: fine
        changed = {**IDENTITY, "jury": {"size": 5}, "limit": 10}
        with pytest.raises(RunConflict, match=r"different settings \(jury, limit\)") as caught:
            second.claim(changed, resume=True)
        assert "targets" not in str(caught.value)


def test_config_round_trip_and_the_password_is_never_saved(
    store: PostgresRunStore, postgres_server: PostgresServer
) -> None:
    assert store.exists()
    assert store.load_config() is None
    config = {"dataset": "sample", "targets": [{"id": "a", "base_url": "http://h:8000/v1"}], "n": 1.5}
    store.save_config(config)
    assert store.load_config() == config
    for leaked in (postgres_server.password, quote(postgres_server.password, safe="")):
        with pytest.raises(StoreError, match="password") as caught:
            store.save_config({"store": f"x {leaked} y"})
        assert_secret_free(str(caught.value), postgres_server)
    assert store.load_config() == config


def test_bad_run_names_are_refused(postgres_url: str) -> None:
    for name in ("", "a::b", "has space", "-x", "x" * 129):
        with pytest.raises(RunNameError):
            PostgresRunStore(postgres_url, name)


def test_put_on_a_run_that_was_never_created_is_a_clear_error(postgres_url: str) -> None:
    with PostgresRunStore(postgres_url, run_name()) as ghost:
        with pytest.raises(RunConflict, match="does not exist"):
            ghost.put(result("a", "x"), 0)
        with pytest.raises(RunConflict, match="does not exist"):
            ghost.submit([("a", "x", 0)])


# -- the work queue ---------------------------------------------------------------------------------


def test_three_concurrent_leasers_never_share_an_item_and_together_get_all(
    store: PostgresRunStore, postgres_url: str
) -> None:
    work = [(t, f"i{n:03d}", n) for t in ("a", "b", "c") for n in range(100)]
    assert store.submit(work) == 300
    assert store.submit(work) == 0  # idempotent
    in_flight: set[tuple[str, str]] = set()
    clash: list[tuple[str, str]] = []
    got: dict[str, list[tuple[str, str]]] = {}
    guard = threading.Lock()
    start = threading.Barrier(3)

    def leaser(worker: str, seed: int) -> None:
        rng = random.Random(seed)
        mine = got.setdefault(worker, [])
        with PostgresRunStore(postgres_url, store.run) as own:  # its own connection, as a worker has
            start.wait()
            while True:
                leases = own.lease(worker, limit=rng.randint(1, 7), lease_seconds=120)
                if not leases:
                    if own.remaining() == 0:
                        return
                    continue
                with guard:
                    for lease in leases:
                        key = (lease.target, lease.item_id)
                        if key in in_flight:
                            clash.append(key)
                        in_flight.add(key)
                        mine.append(key)
                time.sleep(rng.random() * 0.004)
                for lease in leases:
                    with guard:
                        in_flight.discard((lease.target, lease.item_id))
                    own.put(result(lease.target, lease.item_id), lease.position, worker_id=worker)

    threads = [threading.Thread(target=leaser, args=(f"w{n}", n)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert clash == []
    everything = [key for keys in got.values() for key in keys]
    assert len(everything) == len(set(everything)) == 300
    assert set(everything) == {(t, i) for t, i, _ in work}
    assert all(len(keys) > 0 for keys in got.values())  # all three really took part
    progress = store.progress()
    assert [(t.target, t.total, t.done, t.leased, t.pending) for t in progress.targets] == [
        ("a", 100, 100, 0, 0),
        ("b", 100, 100, 0, 0),
        ("c", 100, 100, 0, 0),
    ]
    with psycopg.connect(postgres_url) as conn:
        attempts = conn.execute(
            "SELECT DISTINCT attempts FROM safebench_work WHERE run = %s", (store.run,)
        ).fetchall()
        writers = dict(
            conn.execute(
                "SELECT written_by, count(*) FROM safebench_records WHERE run = %s GROUP BY 1", (store.run,)
            ).fetchall()
        )
    assert attempts == [(1,)]  # every item leased exactly once
    assert writers == {worker: len(keys) for worker, keys in got.items()}


def test_an_expired_lease_is_leased_again_and_heartbeat_cannot_take_it_back(store: PostgresRunStore) -> None:
    store.submit([("a", "x", 0)])
    assert store.lease("w1", lease_seconds=0.5) == [Lease("a", "x", 0, False)]
    assert store.lease("w2", lease_seconds=30) == []
    time.sleep(0.8)
    # The second lease says so: the item may have a checkpoint to resume from.
    assert store.lease("w2", lease_seconds=30) == [Lease("a", "x", 0, False, attempts=2)]
    assert store.heartbeat("w1", 30) == 0  # w1 lost it; its heartbeat does not steal it back
    assert store.heartbeat("w2", 30) == 1


def test_heartbeat_keeps_the_lease_and_release_gives_it_back(store: PostgresRunStore) -> None:
    store.submit([("a", "x", 0), ("a", "y", 1)])
    assert len(store.lease("w1", limit=5, lease_seconds=1.0)) == 2
    for _ in range(4):  # 2 s in all, twice the lease
        time.sleep(0.5)
        assert store.heartbeat("w1", 1.0) == 2
        assert store.lease("w2", lease_seconds=30) == []
    progress = store.progress()
    assert [(w.worker_id, w.leased) for w in progress.workers] == [("w1", 2), ("w2", 0)]
    assert store.release("w1") == 2
    assert [lease.item_id for lease in store.lease("w2", limit=5)] == ["x", "y"]
    assert [(w.worker_id, w.leased) for w in store.progress().workers] == [("w2", 2)]


def test_a_worker_killed_with_sigkill_loses_its_items_to_the_next_worker(
    store: PostgresRunStore, postgres_url: str
) -> None:
    store.submit([("a", f"i{n}", n) for n in range(5)])
    script = (
        "import sys, time\n"
        "from safebench.store_pg import PostgresRunStore\n"
        "s = PostgresRunStore(sys.stdin.readline().strip(), sys.argv[1])\n"
        "print(len(s.lease('doomed', limit=3, lease_seconds=1.5)), flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, store.run], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(postgres_url + "\n")  # not on its command line: `ps` would show it
        child.stdin.flush()
        assert child.stdout.readline().strip() == "3"
        child.kill()
        child.wait(timeout=10)
        assert [lease.item_id for lease in store.lease("next", limit=10)] == ["i3", "i4"]
        time.sleep(1.7)
        assert [lease.item_id for lease in store.lease("next", limit=10)] == ["i0", "i1", "i2"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.kill()


def test_targets_restriction_is_honoured(store: PostgresRunStore) -> None:
    store.submit([(t, f"i{n}", n) for t in ("a", "b", "c") for n in range(4)])
    leased = store.lease("w", targets=["b", "c"], limit=100)
    assert {lease.target for lease in leased} == {"b", "c"} and len(leased) == 8
    assert store.remaining(["a"]) == 4 and store.remaining(["b"]) == 4
    assert [lease.target for lease in store.lease("w", targets=["a"], limit=100)] == ["a"] * 4


def test_put_completes_work_and_submit_marks_recorded_items_done(store: PostgresRunStore) -> None:
    store.put(result("a", "early"), 0)  # recorded before it was ever submitted (a local run, say)
    assert store.submit([("a", "early", 0), ("a", "x", 1), ("a", "y", 2)]) == 3
    assert [lease.item_id for lease in store.lease("w", limit=10)] == ["x", "y"]
    store.put(result("a", "x"), 1, worker_id="w")
    progress = store.progress().targets[0]
    assert (progress.total, progress.done, progress.leased, progress.pending) == (3, 2, 1, 0)
    store.put(result("a", "y"), 2)  # completes whoever holds it
    assert store.remaining() == 0 and store.lease("w", limit=10) == []
    assert store.progress().targets[0].statuses == {"decided": 3}


def test_requeued_errors_come_back_as_retries_once(store: PostgresRunStore) -> None:
    store.submit([("a", "x", 0), ("a", "y", 1)])
    store.put(result("a", "x", "error", None), 0)
    store.put(result("a", "y"), 1)
    assert store.lease("w") == []
    assert store.requeue_errors(["b"]) == 0
    assert store.requeue_errors() == 1
    assert store.statuses("a") == {"x": "error", "y": "decided"}  # the error stays until replaced
    assert store.lease("w", limit=5) == [Lease("a", "x", 0, True)]
    store.put(result("a", "x"), 0)
    assert store.statuses("a") == {"x": "decided", "y": "decided"}
    assert store.requeue_errors() == 0


def test_schema_creation_is_safe_for_workers_starting_together(postgres_server: PostgresServer) -> None:
    database = f"fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
    url = postgres_server.url.rsplit("/", 1)[0] + f"/{database}"
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def open_store() -> None:
        start.wait()
        try:
            PostgresRunStore(url, "same").close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def test_a_dropped_connection_is_replaced_once(store: PostgresRunStore, postgres_url: str) -> None:
    store.put(result("a", "x"), 0)
    with psycopg.connect(postgres_url, autocommit=True) as admin:  # the server restarts, say
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'safebench' AND pid <> pg_backend_pid()"
        )
    time.sleep(0.2)
    assert store.count() == 1


# -- URLs, failures, redaction ----------------------------------------------------------------------


def test_redaction() -> None:
    assert redact("postgresql://u:s3cret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgres://u:p%40ss%2F@h/db?sslmode=require") == "postgres://u:***@h/db?sslmode=require"
    assert redact("postgresql://u:p@ss@h/db") == "postgresql://u:***@h/db"  # an unencoded "@"
    assert redact("postgresql://u@h/db?password=zz&sslmode=a") == "postgresql://u@h/db?password=***&sslmode=a"
    assert redact("postgresql://h/db") == "postgresql://h/db"
    assert redact("host=h password=zz dbname=d") == "host=h password=*** dbname=d"
    url = "postgresql://u:p%40ss@h/db"
    assert scrub("auth failed for p@ss, p%40ss and " + url, url) == "auth failed for ***, *** and " + redact(
        url
    )


def test_bad_urls_are_one_clear_line(postgres_server: PostgresServer) -> None:
    secret = quote(postgres_server.password, safe="")
    for url, message in [
        (f"mysql://u:{secret}@h/db", "is a mysql:// URL: use postgresql://"),
        (f"sqlite:///{secret}", "is a sqlite:// URL"),
        (f"host=h password={secret} dbname=x", "is not a URL"),
        (f"postgresql://u:{secret}@h:99999/db", "port"),
        (f"postgresql://u:{secret}@h/", "name the database"),
        (f"postgresql://u:{secret}@h/db?nosuch=1", "nosuch"),
    ]:
        with pytest.raises(StoreURLError, match=message) as caught:
            validate_store_url(url)
        assert "\n" not in str(caught.value)
        assert_secret_free(str(caught.value), postgres_server)
        with pytest.raises(StoreURLError):
            PostgresRunStore(url, "r")


def test_unreachable_or_refused_database_is_one_line_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    cases = [
        (postgres_server.url_for(port=closed), "Connection refused"),
        (postgres_server.url_for(password="wrong-" + postgres_server.password), "password authentication"),
    ]
    for url, reason in cases:
        for attempt in (lambda u: check_store(u), lambda u: PostgresRunStore(u, "r")):
            with pytest.raises(StoreUnavailable, match=reason) as caught:
                attempt(url)
            text = str(caught.value)
            assert text.startswith("cannot reach the run store postgresql://safebench:***@127.0.0.1:")
            assert "\n" not in text
            assert_secret_free(text, postgres_server)


def test_a_silent_server_times_out_quickly(postgres_server: PostgresServer) -> None:
    with socket.socket() as silent:  # accepts TCP connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = postgres_server.url_for(port=silent.getsockname()[1])
        began = time.monotonic()
        with pytest.raises(StoreUnavailable, match="timeout") as caught:
            check_store(url, timeout=1)
        assert time.monotonic() - began < 10
        assert_secret_free(str(caught.value), postgres_server)
