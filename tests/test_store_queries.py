"""The store's named queries, one behaviour each: dedupe, coalescing, claim, lease expiry, link
conflicts, meter upsert, slot claim, seq paging — and that the guarantees come from unique keys,
so they hold even when two writers race past a check."""
from __future__ import annotations

import os
import random
import sqlite3
import stat
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from integration.domain.errors import UNKNOWN
from integration.store import failures, mappings, meters, scheduler
from integration.store.db import Database
from integration.store.inbox import Inbox
from integration.store.queries import inbox as inbox_q
from integration.store.tx import StoreUnavailable
from tests.engines import store_sql, unique_violation

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

START = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def db(database_url) -> Database:
    store = Database(database_url, busy_timeout=2)
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def inbox(db, clock) -> Inbox:
    return Inbox(db, clock=clock, lease_seconds=30, max_attempts=3, rng=random.Random(3))


def record(inbox: Inbox, object_id: str = "A1", dedupe_key: str | None = None, type: str = "account.callout",
           coalesce: bool = True):
    return inbox.record(source="zuora", type=type, object_type="account", object_id=object_id,
                        object_key=f"zuora-account:{object_id}", dedupe_key=dedupe_key, coalesce=coalesce)


def pragma(db: Database, name: str):
    return store_sql(db).execute(f"PRAGMA {name}").fetchone()[0]


# -- the engine ----------------------------------------------------------------------------------------

@pytest.mark.sqlite_only
def test_sqlite_connections_are_wal_full_sync_with_foreign_keys(db):
    with db.read() as tx:  # a pooled connection, configured on connect
        assert tx.dialect == "sqlite"
    engine = db._engine_here()
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert raw.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert raw.execute("PRAGMA busy_timeout").fetchone()[0] == 2000


def test_a_read_does_not_take_the_write_lock(db, inbox):
    """A read open in one connection leaves writes to others (WAL + deferred BEGIN)."""
    with db.read() as tx:
        tx.rows(inbox_q.STATUS_COUNTS)
        assert record(inbox).created  # a write transaction elsewhere commits meanwhile


@pytest.mark.sqlite_only
def test_a_write_transaction_holds_the_write_lock_from_its_start(db, inbox):
    db.busy_timeout = 0.1
    with db.transaction():
        other = Database(db.url, busy_timeout=0.1)
        with pytest.raises(StoreUnavailable):
            record(Inbox(other))
        other.close()


def test_the_pool_is_rebuilt_in_a_forked_child(db, inbox):
    record(inbox)
    pid = os.fork()
    if pid == 0:  # the child uses the store on connections of its own
        code = 0 if inbox.status_counts() == {"pending": 1} and record(inbox, "A2").created else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert inbox.status_counts() == {"pending": 2}


def test_the_store_file_is_created_owner_only(tmp_path):
    store = Database(f"sqlite:///{tmp_path}/new/x.db")
    store.migrate()
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "x.db").st_mode) == 0o600
    store.close()


def test_only_sqlite_urls_are_accepted_for_now():
    with pytest.raises(ValueError, match="only sqlite"):
        Database("mysql://u@h/db")


def test_changes_marker_moves_when_another_connection_commits(db, inbox):
    before = db.changes_marker()
    assert before is not None and db.changes_marker() == before  # nothing committed: no change
    other = Database(db.url)
    record(Inbox(other))
    other.close()
    # SQLite's data_version moves at the commit; PostgreSQL's NOTIFY reaches the LISTEN socket a moment later.
    deadline = time.monotonic() + 5
    while db.changes_marker() == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert db.changes_marker() != before


# -- the inbox -----------------------------------------------------------------------------------------

def test_record_dedupes_on_the_unique_key(inbox):
    first = record(inbox, dedupe_key="n-1")
    again = record(inbox, "A-other", dedupe_key="n-1")  # the key decides, not the payload
    assert (first.created, again.created, again.event_id) == (True, False, first.event_id)
    assert inbox.status_counts() == {"pending": 1}


def test_coalescing_is_one_pending_event_per_object_and_type(inbox):
    first = record(inbox)
    joined = record(inbox)
    other_type = record(inbox, type="account.updated")
    assert joined.coalesced and joined.event_id == first.event_id
    assert other_type.created
    assert not record(inbox, coalesce=False).coalesced  # a caller may opt out: a second event


def test_coalescing_is_kept_by_the_index_not_by_a_check(db, inbox):
    """Two writers that both saw no pending event: the second insert meets the partial unique index."""
    record(inbox)
    with pytest.raises((sqlite3.IntegrityError, psycopg.IntegrityError)) as caught:
        store_sql(db).execute("INSERT INTO events (id, source, type, object_type, object_id, object_key, dedupe_key,"
                           " next_attempt_at, created_at, updated_at, coalescing) VALUES ('evt_x', 'zuora',"
                           " 'account.callout', 'account', 'A1', 'zuora-account:A1', 'other', ?, ?, ?, 1)",
                           ["2026-01-01T00:00:00.000000Z"] * 3)
    assert unique_violation(caught.value), caught.value


def test_a_claimed_event_no_longer_absorbs_repeats(inbox):
    first = record(inbox)
    [claimed] = inbox.claim("w1")
    second = record(inbox)
    assert claimed.id == first.event_id and second.created and second.event_id != first.event_id


def test_record_unless_active_returns_the_active_event(db, inbox):
    with db.transaction() as tx:
        made, created = inbox.record_unless_active(tx, source="admin", type="account.callout", object_type="account",
                                                   object_id="A1", object_key="zuora-account:A1")
        again, created_again = inbox.record_unless_active(tx, source="admin", type="account.callout",
                                                          object_type="account", object_id="A1",
                                                          object_key="zuora-account:A1")
    assert (created, created_again, again) == (True, False, made)


def test_claim_takes_due_events_once_and_never_two_of_one_object(inbox, clock):
    a1 = record(inbox, "A1").event_id
    record(inbox, "A1", type="account.updated")
    a2 = record(inbox, "A2").event_id
    claimed = inbox.claim("w1", limit=5)
    assert sorted(e.id for e in claimed) == sorted([a1, a2])
    assert all(e.status == "running" and e.lease_owner == "w1" and e.attempts == 1 for e in claimed)
    assert inbox.claim("w2", limit=5) == []  # A1's other event waits for the running one


def test_an_expired_lease_is_claimed_again_and_its_attempt_is_lost(inbox, clock):
    event = record(inbox).event_id
    inbox.claim("w1")
    clock.now += timedelta(seconds=29)
    assert inbox.claim("w2") == []
    clock.now += timedelta(seconds=2)
    [again] = inbox.claim("w2")
    assert (again.id, again.lease_owner, again.attempts) == (event, "w2", 2)
    assert [(a.worker_id, a.outcome) for a in inbox.history(event)] == [("w1", "lost"), ("w2", None)]


def test_release_gives_the_attempt_back(inbox):
    event = record(inbox).event_id
    inbox.claim("w1")
    inbox.release(event, "w1")
    stored = inbox.get(event)
    assert (stored.status, stored.attempts, inbox.history(event)) == ("pending", 0, [])


# -- mappings --------------------------------------------------------------------------------------------

def test_link_is_a_no_op_for_the_same_pair_and_fills_in_what_was_missing(db):
    with db.transaction() as tx:
        mappings.link("account", zuora_id="Z1", billing_id="B1", origin="zuora")(tx)
        mappings.link("account", zuora_id="Z1", billing_id="B1", origin="linked", zuora_number="A-1")(tx)
    found = mappings.find(db, "account", zuora_key="A-1")
    assert (found.zuora_id, found.billing_id, found.origin, found.zuora_number) == ("Z1", "B1", "zuora", "A-1")


@pytest.mark.parametrize("pair", [("Z1", "B2"), ("Z2", "B1")], ids=["zuora side taken", "billing side taken"])
def test_link_conflicts_on_either_unique_key(db, pair):
    with db.transaction() as tx:
        mappings.link("account", zuora_id="Z1", billing_id="B1", origin="zuora")(tx)
    with pytest.raises(mappings.MappingConflict), db.transaction() as tx:
        mappings.link("account", zuora_id=pair[0], billing_id=pair[1], origin="zuora")(tx)
    with db.transaction() as tx:  # another type may reuse both IDs
        mappings.link("invoice", zuora_id=pair[0], billing_id=pair[1], origin="billing")(tx)
    assert mappings.counts(db) == {"account": 1, "invoice": 1}


def test_linking_an_account_releases_events_waiting_for_it(db, inbox):
    event = record(inbox).event_id
    inbox.claim("w1")
    inbox.fail(event, "w1", "MISSING_MAPPING", "no link yet", waiting_for="billing-account:B1")
    with db.transaction() as tx:
        mappings.link("account", zuora_id="Z1", billing_id="B1", origin="zuora", inbox=inbox)(tx)
    stored = inbox.get(event)
    assert (stored.status, stored.series, stored.waiting_for) == ("pending", 2, None)


# -- meters ------------------------------------------------------------------------------------------------

def test_meter_upsert_creates_then_changes_only_on_a_difference(db):
    fields = {"zuora_subscription_number": "S-1", "zuora_charge_number": "C-1", "uom": "Each", "mode": "quantity"}
    created, was_new = meters.put_meter(db, "m1", **fields)
    same, again_new = meters.put_meter(db, "m1", **fields)
    changed, _ = meters.put_meter(db, "m1", **{**fields, "mode": "revenue"})
    assert (was_new, again_new) == (True, False)
    assert same == created  # not even updated_at moves on a repeat
    assert changed.mode == "revenue" and changed.created_at == created.created_at
    assert set(meters.settings_for(db, ["m1", "m2"])) == {"m1"}
    assert meters.delete_meter(db, "m1") and meters.get_meter(db, "m1") is None


# -- scheduler ---------------------------------------------------------------------------------------------

def test_a_slot_is_won_by_one_worker(db):
    with db.transaction() as tx:
        assert scheduler.claim_slot(tx, "retry:x", "w1", START)
        assert not scheduler.claim_slot(tx, "retry:x", "w2", START)
        scheduler.record_result(tx, "retry:x", 4)
    assert [(s["slot"], s["worker_id"], s["retried"]) for s in scheduler.slots(db)] == [("retry:x", "w1", 4)]


# -- failures: seq paging ----------------------------------------------------------------------------------

def fail_new(inbox: Inbox, object_id: str) -> str:
    event = record(inbox, object_id).event_id
    inbox.claim("w")
    inbox.fail(event, "w", UNKNOWN, "boom")
    return event


def test_events_get_increasing_seq_and_the_failure_list_pages_by_it(db, inbox):
    ids = [fail_new(inbox, f"A{n}") for n in range(5)]
    first, cursor = failures.page(db, limit=2)
    second, cursor2 = failures.page(db, limit=2, after=failures.decode_cursor(cursor))
    third, end = failures.page(db, limit=2, after=failures.decode_cursor(cursor2))
    assert [f.id for f in first + second + third] == ids and end is None
    assert [f.seq for f in first + second + third] == sorted(f.seq for f in first + second + third)
    # Retried and failed again: it keeps its place.
    assert failures.retry(db, failures.Selector(ids=(ids[0],)), clock=inbox.clock) == 1
    [again] = inbox.claim("w")
    inbox.fail(again.id, "w", UNKNOWN, "boom again")
    assert [f.id for f in failures.page(db, limit=10)[0]] == ids


def test_retrying_two_failed_events_of_one_object_puts_both_back(db, inbox):
    """Both back in the queue at once: the coalescing index does not get in the way."""
    first = fail_new(inbox, "A1")
    second = fail_new(inbox, "A1")
    assert failures.retry(db, failures.Selector(all=True)) == 2
    assert {inbox.get(first).status, inbox.get(second).status} == {"pending"}
