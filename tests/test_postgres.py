"""PostgreSQL with many writers: what the database itself guarantees when several processes and
hosts share it (CONTRACT §10). Every test here needs PostgreSQL (skipped without it, failed under
CI=true); the behaviour both engines share is in the both-engine suites."""
from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest

from integration import create_app
from integration.domain.times import utcnow
from integration.services import Services
from integration.store import failures, mappings, scheduler
from integration.store.db import Database
from integration.store.engine import libpq_url
from integration.store.inbox import Inbox
from integration.store.migrate import revisions
from integration.store.types import to_db_time
from tests.conftest import make_config
from tests.engines import store_sql
from tests.test_webhook_zuora import post


@pytest.fixture
def engine():
    """Every test in this module is about PostgreSQL."""
    return "postgresql"


@pytest.fixture
def db(database_url):
    store = Database(database_url, busy_timeout=5)
    store.migrate()
    yield store
    store.close()


def record(inbox: Inbox, object_id: str, dedupe_key: str | None = None, type: str = "account.callout"):
    return inbox.record(source="zuora", type=type, object_type="account", object_id=object_id,
                        object_key=f"zuora-account:{object_id}", dedupe_key=dedupe_key)


def test_postgres_urls_of_both_spellings_reach_the_same_store(db):
    other = Database(db.url.replace("postgresql://", "postgres://", 1))
    assert other.dialect == "postgresql" and other.pending_migrations() == []
    other.close()


def test_two_running_events_of_one_object_are_refused_by_the_database(db):
    inbox = Inbox(db)
    record(inbox, "A1", "d1", type="account.callout")
    record(inbox, "A1", "d2", type="account.updated")
    with pytest.raises(psycopg.errors.UniqueViolation) as caught:
        store_sql(db).execute("UPDATE events SET status = 'running', lease_expires_at = '2026-01-01T00:00:00.000000Z'")
    assert caught.value.diag.constraint_name == "events_one_running"  # the driver's field, not its sentence


def test_a_claim_that_meets_the_running_index_skips_that_object(db):
    """A sibling event taken elsewhere between the scan and the take: that object is skipped,
    the claim goes on to the next one instead of failing."""
    inbox = Inbox(db)
    first = record(inbox, "A1", "d1", type="account.callout").event_id
    record(inbox, "A1", "d2", type="account.updated")
    record(inbox, "B1", "d3")
    # Another host has A1's first event running under a live lease it took a moment ago, as far as
    # the index is concerned; the claim's scan still lists A1's other event (made due on purpose).
    until = to_db_time(utcnow() + timedelta(minutes=5))
    store_sql(db).execute("UPDATE events SET status = 'running', lease_owner = 'elsewhere', lease_expires_at = ?"
                          " WHERE id = ?", (until, first))
    claimed = inbox.claim("w1", limit=5)
    assert [e.object_id for e in claimed] == ["B1"]


def test_many_threads_claiming_never_run_two_events_of_one_object(db):
    """8 claimers, 40 objects with 5 events each: every event is worked exactly once, and at no
    moment do two of one object run (the finisher checks, and the index would refuse it anyway)."""
    inbox = Inbox(db, lease_seconds=60)
    ids = {record(inbox, f"O{i % 40}", f"d{i}", type=f"t{i // 40}").event_id for i in range(200)}
    running: set[str] = set()
    guard = threading.Lock()
    done: list[str] = []
    overlaps: list[str] = []

    def work(n: int) -> None:
        idle = 0
        while idle < 20:
            events = inbox.claim(f"w{n}", limit=2)
            if not events:
                idle += 1
                time.sleep(0.005)
                continue
            idle = 0
            for event in events:
                with guard:
                    if event.object_key in running:
                        overlaps.append(event.object_key)
                    running.add(event.object_key)
                time.sleep(0.001)
                with guard:
                    running.discard(event.object_key)
                with db.transaction() as tx:
                    inbox.finish(event.id, f"w{n}", tx)
                with guard:
                    done.append(event.id)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))
    assert not overlaps
    assert sorted(done) == sorted(ids)
    assert inbox.status_counts() == {"done": 200}


def _record_in_process(url: str, start, n: int) -> None:
    db = Database(url)
    inbox = Inbox(db)
    start.wait(30)
    for i in range(50):
        # Every process records the same 50 notifications (dedupe) and 50 events of 10 objects
        # (coalescing) and links the same 50 pairs (mappings).
        record(inbox, f"D{i}", f"same:{i}")
        record(inbox, f"C{i % 10}", f"p{n}:{i}")
        with db.transaction() as tx:
            mappings.link("account", zuora_id=f"Z{i}", billing_id=f"B{i}", origin="zuora")(tx)
    db.close()


def test_concurrent_processes_dedupe_coalesce_and_link_exactly_once(db):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_record_in_process, args=(db.url, start, n)) for n in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = store_sql(db).execute("SELECT dedupe_key, object_key FROM events").fetchall()
    assert len([r for r in rows if r["dedupe_key"].startswith("same:")]) == 50
    assert len([r for r in rows if r["object_key"].startswith("zuora-account:C")]) == 10
    assert mappings.counts(db) == {"account": 50}


def test_one_scheduled_slot_runs_once_across_many_writers(db):
    now = utcnow()
    wins: list[bool] = []

    def claim(n: int) -> None:
        with db.transaction() as tx:
            won = scheduler.claim_slot(tx, "retry:slot-1", f"w{n}", now)
            time.sleep(0.01)  # hold the transaction, so the others really wait on the key
            wins.append(won)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(claim, range(8)))
    assert sorted(wins) == [False] * 7 + [True]
    assert len(scheduler.slots(db)) == 1


def test_failure_retry_and_delete_race_leave_each_event_in_one_state(db):
    inbox = Inbox(db)
    ids = [record(inbox, f"F{i}", f"f{i}").event_id for i in range(60)]
    claimed = inbox.claim("w", limit=60)
    for event in claimed:
        inbox.fail(event.id, "w", "UNKNOWN", "boom")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: (failures.retry if n % 2 else failures.delete)(
            db, failures.Selector(all=True)), range(4)))
    assert sum(results) == 60  # each failed event was retried or deleted, once
    counts = inbox.status_counts()
    assert counts.get("pending", 0) + counts.get("deleted", 0) == 60 and set(ids)


def test_concurrent_migrate_runs_wait_for_each_other(database_url):
    """Four processes migrate one empty store at once: one applies, the others find it done."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        applied = pool.map(_migrate, [database_url] * 4)
    migrations = len(revisions())
    assert sorted(len(a) for a in applied) == [0, 0, 0, migrations]  # one run applied them all


def _migrate(url: str) -> list[str]:
    db = Database(url)
    try:
        return db.migrate()
    finally:
        db.close()


def test_a_notify_reaches_an_idle_listener(db):
    before = db.changes_marker()
    assert before is not None and db.changes_marker() == before
    other = Database(db.url)
    record(Inbox(other), "N1")
    other.close()
    deadline = time.monotonic() + 5
    while db.changes_marker() == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert db.changes_marker() != before


def _terminate_and_lock(database_url: str, allow: bool) -> int:
    """Every other backend of the test database dies, and new connections are refused (``allow``
    False) or allowed again: PostgreSQL going away and coming back, as the service sees it."""
    name = database_url.split("?")[0].rsplit("/", 1)[-1]
    from tests.engines import ADMIN_URL
    with psycopg.connect(libpq_url(ADMIN_URL), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {"true" if allow else "false"}')
        return len(admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                                 (name,)).fetchall())


def test_readyz_names_the_engine_and_the_webhook_path_recovers_after_backends_die(tmp_path, database_url):
    services = Services.from_config(make_config(tmp_path, database_url=database_url))
    services.db.migrate()
    client = create_app(services=services).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "engine": "postgresql",
                                "migrations": {"applied": len(revisions()), "pending": []}}
    try:
        assert _terminate_and_lock(database_url, allow=False) >= 1, "the service had pooled connections"
        assert post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": "n-down"}).status_code == 503
        assert client.get("/readyz").status_code == 503
    finally:
        _terminate_and_lock(database_url, allow=True)
    # Nothing restarted: pool_pre_ping replaces the dead connections and the same process recovers.
    assert post(client, {"AccountId": "A1"}, headers={"Zuora-Notification-Id": "n-down"}).status_code == 200
    assert client.get("/readyz").status_code == 200
    assert services.inbox.status_counts() == {"pending": 1}
    services.db.close()
