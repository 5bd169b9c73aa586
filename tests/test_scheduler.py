"""The scheduled retry (CONTRACT §5): cron slots, the 7-day window, the cap, MISSING_MAPPING left
alone, one runner per slot however many workers, and no late runs."""
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from integration.domain.errors import MISSING_MAPPING
from integration.flows.outcome import Outcome
from integration.services import Services
from integration.store.types import to_db_time
from integration.worker.loop import Worker
from integration.worker.scheduled_retry import (
    DEFAULT_CAP,
    latest_slot,
    scheduled_retry_job,
)
from tests.conftest import make_config
from tests.engines import store_sql

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

UTC = timezone.utc
SLOT = datetime(2026, 11, 23, 11, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def failed(services, object_id, *, at, code="ZUORA_REJECTED", waiting_for=None):
    """An event on the failure list whose last failure was at ``at`` (the row as ``Inbox.fail`` leaves it)."""
    stamp = to_db_time(at)
    event_id = f"evt_{object_id}"
    with store_sql(services.db).conn as conn:
        conn.execute(
            "INSERT INTO events (id, source, type, object_type, object_id, object_key, dedupe_key, status, attempts,"
            " error_code, last_error, waiting_for, next_attempt_at, first_failed_at, last_failed_at, created_at,"
            " updated_at) VALUES (?, 'zuora', 'account.callout', 'account', ?, ?, ?, 'failed', 10, ?, 'refused', ?,"
            " ?, ?, ?, ?, ?)",
            (event_id, object_id, f"zuora-account:{object_id}", f"zuora:{object_id}", code, waiting_for,
             stamp, stamp, stamp, stamp, stamp))
    return event_id


def status_of(services, event_id):
    return services.inbox.get(event_id).status


def runs(services):
    return [dict(r) for r in store_sql(services.db).execute(
        "SELECT slot, worker_id, retried FROM scheduled_runs ORDER BY slot").fetchall()]


# -- slots -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("now,expected", [
    (datetime(2026, 11, 23, 11, 30, 0, tzinfo=UTC), datetime(2026, 11, 23, 11, 30, tzinfo=UTC)),
    (datetime(2026, 11, 23, 11, 30, 59, 999999, tzinfo=UTC), datetime(2026, 11, 23, 11, 30, tzinfo=UTC)),
    (datetime(2026, 11, 23, 11, 29, 59, tzinfo=UTC), datetime(2026, 11, 22, 23, 30, tzinfo=UTC)),
    (datetime(2026, 11, 23, 23, 45, tzinfo=UTC), datetime(2026, 11, 23, 23, 30, tzinfo=UTC)),
    (datetime(2026, 11, 24, 0, 5, tzinfo=UTC), datetime(2026, 11, 23, 23, 30, tzinfo=UTC)),
])
def test_latest_slot_of_the_default_cron(now, expected):
    assert latest_slot("30 11,23 * * *", now) == expected


def test_defaults_match_the_contract(services):
    assert services.config.retry_cron == "30 11,23 * * *"
    job = scheduled_retry_job(services)
    assert (job.cap, job.window, job.max_lateness) == (50_000, timedelta(days=7), timedelta(hours=1))
    assert DEFAULT_CAP == 50_000


# -- what is retried ---------------------------------------------------------------------------------------

def test_runs_once_per_slot_over_the_last_seven_days_without_missing_mapping(services):
    recent = failed(services, "A1", at=SLOT - timedelta(days=6, hours=23))
    yesterday = failed(services, "A2", at=SLOT - timedelta(days=1), code="UNKNOWN")
    too_old = failed(services, "A3", at=SLOT - timedelta(days=7, minutes=1))
    waiting = failed(services, "A4", at=SLOT - timedelta(hours=1), code=MISSING_MAPPING,
                     waiting_for="zuora-account:A4")
    clock = Clock(SLOT + timedelta(seconds=1))
    job = scheduled_retry_job(services, clock=clock, worker_id="w1")
    job()
    assert {e: status_of(services, e) for e in (recent, yesterday, too_old, waiting)} == {
        recent: "pending", yesterday: "pending", too_old: "failed", waiting: "failed"}
    assert runs(services) == [{"slot": "retry:2026-11-23T11:30Z", "worker_id": "w1", "retried": 2}]
    event = services.inbox.get(recent)
    assert (event.attempts, event.next_attempt_at) == (0, clock.now)

    # The same slot again (the job is called every second): nothing more happens.
    again = failed(services, "A5", at=SLOT + timedelta(minutes=1))
    clock.now = SLOT + timedelta(minutes=2)
    job()
    assert status_of(services, again) == "failed"
    assert len(runs(services)) == 1

    # The next slot (23:30) takes the new failure.
    clock.now = SLOT + timedelta(hours=12, seconds=3)
    job()
    assert status_of(services, again) == "pending"
    assert runs(services)[1] == {"slot": "retry:2026-11-23T23:30Z", "worker_id": "w1", "retried": 1}
    assert [r.retried for r in job.runs] == [2, 1]


def test_nothing_runs_between_slots(services):
    event_id = failed(services, "A1", at=SLOT - timedelta(hours=12))
    clock = Clock(SLOT - timedelta(minutes=1))
    job = scheduled_retry_job(services, clock=clock)
    for minute in range(0, 60, 7):  # the worker calls the job all the time
        clock.now = SLOT - timedelta(hours=10) + timedelta(minutes=minute)  # 01:30 to 02:26
        job()
    assert status_of(services, event_id) == "failed"
    assert runs(services) == []


def test_the_cap_keeps_the_oldest_first(services):
    ids = [failed(services, f"A{i}", at=SLOT - timedelta(hours=10 - i)) for i in range(5)]
    job = scheduled_retry_job(services, clock=Clock(SLOT), cap=3)
    job()
    assert [status_of(services, e) for e in ids] == ["pending"] * 3 + ["failed"] * 2
    assert runs(services)[0]["retried"] == 3


def test_the_default_cap_is_50000_per_run(services):
    stamp = "2026-11-23T10:00:00.000000Z"
    raw = store_sql(services.db)
    with raw.conn as conn:
        if services.db.dialect == "sqlite":  # one transaction: autocommit would fsync 50,001 times
            conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO events (id, source, type, object_type, object_id, object_key, dedupe_key, status,"
            " error_code, last_error, attempts, next_attempt_at, first_failed_at, last_failed_at, created_at,"
            " updated_at) VALUES (?, 'zuora', 'account.callout', 'account', ?, ?, ?, 'failed', 'UNKNOWN', 'x', 3,"
            " ?, ?, ?, ?, ?)",
            [(f"evt_{i:06d}", f"A{i}", f"zuora-account:A{i}", f"d{i}", stamp, stamp, stamp, stamp, stamp)
             for i in range(50_001)])
    scheduled_retry_job(services, clock=Clock(SLOT))()
    assert runs(services)[0]["retried"] == 50_000
    counts = {r["status"]: r["n"] for r in store_sql(services.db).execute(
        "SELECT status, COUNT(*) AS n FROM events GROUP BY 1").fetchall()}
    assert counts == {"pending": 50_000, "failed": 1}


def test_the_retry_cron_is_configurable(tmp_path):
    services = Services.from_config(make_config(tmp_path, retry_cron="*/15 * * * *"))
    services.db.migrate()
    event_id = failed(services, "A1", at=SLOT - timedelta(days=1))
    scheduled_retry_job(services, clock=Clock(SLOT + timedelta(minutes=16)))()
    assert status_of(services, event_id) == "pending"
    assert runs(services)[0]["slot"] == "retry:2026-11-23T11:45Z"
    services.db.close()


# -- late slots ----------------------------------------------------------------------------------------------

def test_a_slot_missed_by_more_than_an_hour_is_not_run_late(services):
    event_id = failed(services, "A1", at=SLOT - timedelta(hours=2))
    clock = Clock(SLOT - timedelta(minutes=5))
    job = scheduled_retry_job(services, clock=clock)
    job()
    clock.now = SLOT + timedelta(hours=1, seconds=1)  # the worker was stuck or down through the slot
    job()
    assert status_of(services, event_id) == "failed"
    assert runs(services) == []
    # A worker that starts that late does not run it either.
    scheduled_retry_job(services, clock=Clock(SLOT + timedelta(hours=3)))()
    assert runs(services) == []


def test_a_worker_starting_within_the_hour_still_runs_the_slot(services):
    event_id = failed(services, "A1", at=SLOT - timedelta(hours=2))
    scheduled_retry_job(services, clock=Clock(SLOT + timedelta(minutes=59)))()
    assert status_of(services, event_id) == "pending"
    assert len(runs(services)) == 1


def test_a_busy_store_means_try_again_next_call(services, monkeypatch):
    from integration.store.db import StoreUnavailable
    event_id = failed(services, "A1", at=SLOT - timedelta(hours=2))
    job = scheduled_retry_job(services, clock=Clock(SLOT))
    real = job.run_slot
    monkeypatch.setattr(job, "run_slot", lambda *a: (_ for _ in ()).throw(StoreUnavailable("locked")))
    with pytest.raises(StoreUnavailable):
        job()
    monkeypatch.setattr(job, "run_slot", real)
    job()
    assert status_of(services, event_id) == "pending"


# -- one runner per slot --------------------------------------------------------------------------------------

def second_services(config):
    """Another process's view of the same database file: its own Database and connections."""
    return Services.from_config(config)


def test_two_jobs_racing_over_one_file_run_the_slot_once(services, config):
    ids = [failed(services, f"A{i}", at=SLOT - timedelta(hours=3)) for i in range(20)]
    other = second_services(config)
    jobs = [scheduled_retry_job(s, clock=Clock(SLOT), worker_id=f"w{n}") for n, s in enumerate((services, other))]
    barrier = threading.Barrier(2)
    errors = []

    def race(job):
        try:
            barrier.wait()
            job()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert sorted(len(job.runs) for job in jobs) == [0, 1]
    winner = next(job for job in jobs if job.runs)
    assert runs(services) == [{"slot": "retry:2026-11-23T11:30Z", "worker_id": winner.worker_id, "retried": 20}]
    assert {status_of(services, e) for e in ids} == {"pending"}
    other.db.close()


def test_two_workers_running_the_job_retry_each_event_once(services, config):
    """The real loop: two Worker instances, one database file, the job as their periodic task."""
    ids = [failed(services, f"A{i}", at=SLOT - timedelta(hours=3)) for i in range(10)]
    handled = []
    lock = threading.Lock()

    def handle(event):
        with lock:
            handled.append(event.id)
        return Outcome()

    workers, jobs = [], []
    for n, s in enumerate((services, second_services(config))):
        s.inbox.clock = Clock(SLOT + timedelta(seconds=3))
        job = scheduled_retry_job(s, clock=Clock(SLOT + timedelta(seconds=2)), worker_id=f"worker-{n}")
        jobs.append(job)
        workers.append(Worker(s.inbox, {"account.callout": handle}, poll_interval=0.01, idle_interval=0.05,
                              periodic=[job]))
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(handled) < len(ids):
        time.sleep(0.01)
    for w in workers:
        w.stop()
    for t in threads:
        t.join(10)
    assert sorted(handled) == sorted(ids)  # each retried event ran exactly once
    assert sum(len(job.runs) for job in jobs) == 1
    assert len(runs(services)) == 1 and runs(services)[0]["retried"] == 10
    assert {status_of(services, e) for e in ids} == {"done"}
