import multiprocessing
import random
import time
from datetime import datetime, timedelta, timezone

import pytest

from integration.domain.backoff import Backoff
from integration.domain.errors import (
    MISSING_MAPPING,
    RETRIES_EXHAUSTED,
    UNKNOWN,
    ZUORA_REJECTED,
)
from integration.store.db import Database
from integration.store.inbox import Inbox, LeaseLost
from tests.engines import store_sql

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

class Clock:
    def __init__(self):
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def inbox(database_url, clock):
    db = Database(database_url)
    db.migrate()
    return Inbox(db, clock=clock, lease_seconds=30, max_attempts=3, rng=random.Random(7))


def record(inbox, object_id="A1", dedupe_key=None, type="account.callout", coalesce=True):
    return inbox.record(source="zuora", type=type, object_type="account", object_id=object_id,
                        object_key=f"zuora-account:{object_id}", dedupe_key=dedupe_key, coalesce=coalesce)


def test_repeated_dedupe_key_returns_the_existing_event(inbox):
    first = record(inbox, dedupe_key="zuora:n1")
    again = record(inbox, dedupe_key="zuora:n1")
    assert first.created and not again.created
    assert again.event_id == first.event_id
    assert store_sql(inbox.db).execute("SELECT COUNT(*) FROM events").fetchall()[0][0] == 1


def test_pending_event_for_same_object_is_coalesced(inbox):
    first = record(inbox, dedupe_key="zuora:n1")
    second = record(inbox, dedupe_key="zuora:n2")
    assert second.coalesced and second.event_id == first.event_id
    other = record(inbox, object_id="A2", dedupe_key="zuora:n3")
    assert other.created


def test_no_two_events_of_one_object_run_at_once(inbox, clock):
    first = record(inbox, dedupe_key="zuora:n1")
    [claimed] = inbox.claim("w1")
    assert claimed.id == first.event_id
    second = record(inbox, dedupe_key="zuora:n2")  # first is running, so a new one is stored
    assert second.created
    assert inbox.claim("w2") == []  # object busy
    with inbox.db.transaction() as conn:
        inbox.finish(first.event_id, "w1", conn)
    [next_one] = inbox.claim("w2")
    assert next_one.id == second.event_id


def test_claim_takes_due_events_only(inbox, clock):
    event = record(inbox).event_id
    [_claimed] = inbox.claim("w1")
    inbox.reschedule(event, "w1", "timeout", retry_after=120)
    assert inbox.claim("w1") == []
    clock.advance(121)
    assert [e.id for e in inbox.claim("w1")] == [event]


def test_expired_lease_makes_event_claimable_again(inbox, clock):
    event = record(inbox).event_id
    inbox.claim("dead-worker")
    clock.advance(29)
    assert inbox.claim("w2") == []
    clock.advance(2)
    [again] = inbox.claim("w2")
    assert again.id == event and again.attempts == 2 and again.lease_owner == "w2"
    with pytest.raises(LeaseLost):  # the dead worker's late outcome is refused
        inbox.fail(event, "dead-worker", UNKNOWN, "late")


def test_a_pending_sibling_never_runs_beside_an_expired_lease_event(inbox, clock):
    """The object's event whose worker died is taken again first, and the sibling waits for it: one
    running event per object on every engine (and the index events_one_running would refuse a second)."""
    stuck = record(inbox, dedupe_key="zuora:n1").event_id
    inbox.claim("dead-worker")
    sibling = record(inbox, dedupe_key="zuora:n2")
    assert sibling.created  # A1 is running, so the new event is stored apart
    clock.advance(31)  # the lease has expired
    taken = inbox.claim("w2", limit=2)
    assert [e.id for e in taken] == [stuck] and taken[0].lease_owner == "w2"
    assert inbox.claim("w3") == []  # still the sibling's object's running event, now w2's


def test_a_take_that_meets_the_one_running_index_passes_over_that_event(inbox, clock):
    """The claim's last word on both engines: a take that would make a second running event of an
    object (a sibling taken by another process between the scan and the take) is refused by
    events_one_running and rolled back to its savepoint; the claim's transaction goes on."""
    first = record(inbox, "A1", type="account.callout").event_id
    sibling = record(inbox, "A1", type="account.updated").event_id
    assert [e.id for e in inbox.claim("w1")] == [first]
    now = clock()
    params = {"now": now, "lease_until": now + timedelta(seconds=30), "worker_id": "w2"}
    with inbox.db.transaction() as tx:
        assert Inbox._take(tx, sibling, params) is None
    assert inbox.get(sibling).status == "pending" and inbox.history(sibling) == []
    assert inbox.get(first).status == "running"


def test_a_claim_of_several_takes_one_event_per_object_and_widens_its_scan(inbox, clock):
    first = record(inbox, "A1", type="account.callout").event_id
    clock.advance(1)
    record(inbox, "A1", type="account.updated")  # another type: not coalesced into the first
    clock.advance(1)
    other = record(inbox, "B1").event_id
    # The first two candidates are both A1's; the second is passed over, and the scan widens to B1.
    assert [e.id for e in inbox.claim("w1", limit=2)] == [first, other]


def test_heartbeat_keeps_the_lease(inbox, clock):
    event = record(inbox).event_id
    inbox.claim("w1")
    clock.advance(25)
    assert inbox.heartbeat(event, "w1")
    clock.advance(25)
    assert inbox.claim("w2") == []
    assert not inbox.heartbeat(event, "w2")


def test_backoff_is_full_jitter_within_bounds():
    backoff = Backoff(base_seconds=5, cap_seconds=300)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 5), (2, 10), (3, 20), (4, 40), (7, 300), (20, 300)]:
        delays = [backoff.delay(attempt - 1, rng) for _ in range(500)]  # after the attempt-th failure
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.9 and min(delays) < ceiling * 0.1  # spread over the whole range
    # A wait the remote named is the wait: never jittered shorter, never longer than asked.
    assert {backoff.delay(attempt, rng, hint=60) for attempt in (1, 5, 20) for _ in range(50)} == {60}
    assert backoff.delay(20, rng, hint=0.5) == 0.5


def test_reschedule_until_attempts_run_out_then_fail(inbox, clock):
    event = record(inbox).event_id
    for attempt in (1, 2):
        [claimed] = inbox.claim("w1")
        assert claimed.attempts == attempt
        assert inbox.reschedule(event, "w1", "HTTP 503")
        stored = inbox.get(event)
        assert stored.status == "pending"
        assert clock.now <= stored.next_attempt_at <= clock.now + timedelta(seconds=5 * 2 ** (attempt - 1))
        clock.advance(3600)
    inbox.claim("w1")
    assert not inbox.reschedule(event, "w1", "HTTP 503")
    failed = inbox.get(event)
    assert failed.status == "failed" and failed.error_code == RETRIES_EXHAUSTED
    assert failed.last_error == "gave up after 3 attempts: HTTP 503"


def test_permanent_failure_is_recorded_with_its_code(inbox, clock):
    event = record(inbox).event_id
    inbox.claim("w1")
    inbox.fail(event, "w1", ZUORA_REJECTED, "53100020: Invalid currency")
    stored = inbox.get(event)
    assert (stored.status, stored.error_code, stored.last_error) == ("failed", ZUORA_REJECTED,
                                                                      "53100020: Invalid currency")
    assert stored.first_failed_at == stored.last_failed_at == clock.now
    assert stored.lease_owner is None
    assert inbox.claim("w1") == []


def test_missing_mapping_waits_until_released(inbox):
    event = inbox.record(source="billing", type="invoice.finalized", object_type="invoice", object_id="inv1",
                         object_key="billing-invoice:inv1").event_id
    inbox.claim("w1")
    inbox.fail(event, "w1", MISSING_MAPPING, "account acc1 is not linked", waiting_for="billing-account:acc1")
    assert inbox.claim("w1") == []
    with inbox.db.transaction() as conn:
        assert inbox.release_waiting(conn, "billing-account:acc1") == 1
    [again] = inbox.claim("w1")
    assert again.id == event


def _claim_in_process(url, worker_id, queue, start):
    db = Database(url)
    inbox = Inbox(db, lease_seconds=60)
    got = []
    start.wait(30)
    while True:
        events = inbox.claim(worker_id)
        if not events:
            break
        got.append(events[0].id)
        time.sleep(0.002)  # a little work, so the two processes interleave
        with db.transaction() as conn:
            inbox.finish(events[0].id, worker_id, conn)
    queue.put(got)


def test_claims_are_exclusive_between_two_processes(database_url):
    url = database_url
    db = Database(url)
    db.migrate()
    inbox = Inbox(db)
    ids = {record(inbox, object_id=f"A{i}").event_id for i in range(200)}
    ctx = multiprocessing.get_context("spawn")
    queue, start = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_claim_in_process, args=(url, f"w{i}", queue, start)) for i in range(2)]
    for p in procs:
        p.start()
    start.set()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    claimed = results[0] + results[1]
    assert len(claimed) == len(set(claimed)) == 200
    assert set(claimed) == ids
    assert all(results), "both processes should have taken part"
    assert store_sql(db).execute("SELECT COUNT(*) FROM events WHERE status = 'done'").fetchall()[0][0] == 200
