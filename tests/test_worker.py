import os
import signal
import socket
import subprocess
import threading
import time
from datetime import timedelta

import pytest
import requests

from integration.domain.errors import (
    INVALID_DATA,
    MISSING_MAPPING,
    UNKNOWN,
    InvalidData,
    MissingMapping,
    TransientError,
)
from integration.flows.outcome import Outcome
from integration.store import mappings
from integration.worker.loop import Worker
from tests.engines import store_sql

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

AUTH = ("zuora", "callout-password-2b8e")


def record(services, object_id="A1", type="account.callout"):
    return services.inbox.record(source="zuora", type=type, object_type="account", object_id=object_id,
                                 object_key=f"zuora-account:{object_id}").event_id


def status(services, event_id):
    return services.inbox.get(event_id)


def test_handler_outcome_writes_commit_with_the_event(services):
    def handle(event):
        return Outcome(writes=[mappings.link("account", zuora_id=event.object_id, billing_id="B1", origin="zuora")])
    worker = Worker(services.inbox, {"account.callout": handle})
    event_id = record(services)
    assert worker.drain() == 1
    assert status(services, event_id).status == "done"
    assert store_sql(services.db).execute("SELECT zuora_id FROM id_mappings").fetchall()[0][0] == "A1"


def test_warnings_of_a_done_event_are_kept_in_its_history_and_logged(services, caplog):
    def handle(event):
        return Outcome(warnings=["billing platform rounding -0.10: GROSS_AMOUNT 981.94", "second"])
    event_id = record(services)
    with caplog.at_level("WARNING", logger="integration.worker"):
        assert Worker(services.inbox, {"account.callout": handle}).drain() == 1
    [attempt] = services.inbox.history(event_id)
    assert (attempt.outcome, attempt.code, attempt.message) == (
        "done", None, "warning: billing platform rounding -0.10: GROSS_AMOUNT 981.94; second")
    assert [r.warning for r in caplog.records if r.getMessage() == "event done with a warning"] == [
        "billing platform rounding -0.10: GROSS_AMOUNT 981.94", "second"]
    quiet = record(services, "A2")
    Worker(services.inbox, {"account.callout": lambda event: Outcome()}).drain()
    assert services.inbox.history(quiet)[0].message is None


def test_failing_write_leaves_neither_mapping_nor_done(services):
    def handle(event):
        def writes(tx):
            mappings.link("account", zuora_id="A1", billing_id="B1", origin="zuora")(tx)
            raise RuntimeError("disk on fire")
        return Outcome(writes=[writes])
    worker = Worker(services.inbox, {"account.callout": handle})
    event_id = record(services)
    worker.drain()
    event = status(services, event_id)
    assert (event.status, event.error_code) == ("failed", UNKNOWN)
    assert "disk on fire" in event.last_error
    assert store_sql(services.db).execute("SELECT COUNT(*) FROM id_mappings").fetchall()[0][0] == 0


@pytest.mark.parametrize("error,expected_status,code", [
    (InvalidData("primaryEmail", "the Zuora account has no email"), "failed", INVALID_DATA),
    (MissingMapping("account acc1 is not linked", "billing-account:acc1"), "failed", MISSING_MAPPING),
    (TransientError("HTTP 503 from Zuora", retry_after=30), "pending", None),
    (KeyError("basicInfo"), "failed", UNKNOWN),
])
def test_errors_decide_the_outcome(services, error, expected_status, code):
    def handle(event):
        raise error
    worker = Worker(services.inbox, {"account.callout": handle})
    event_id = record(services)
    worker.drain()
    event = status(services, event_id)
    assert (event.status, event.error_code) == (expected_status, code)
    if isinstance(error, TransientError):
        assert event.last_error == "HTTP 503 from Zuora"
        assert (event.next_attempt_at - event.updated_at).total_seconds() >= 30
    if isinstance(error, MissingMapping):
        assert event.waiting_for == "billing-account:acc1"


def test_event_without_handler_fails_visibly(services):
    worker = Worker(services.inbox, {})
    event_id = record(services)
    worker.drain()
    event = status(services, event_id)
    assert (event.status, event.error_code, event.last_error) == (
        "failed", UNKNOWN, "no handler for event type 'account.callout'")


def test_idle_worker_picks_up_an_event_recorded_by_another_connection(services):
    """An idle worker wakes on another connection's commit (``PRAGMA data_version``), not on its idle timer.

    The idle interval is an hour, so an event handled within the test's wait can only have been
    picked up by the data_version check; the worker is known to be idle (sleeping in its idle
    loop) from its own second data_version read of a pass, not from a guessed sleep.
    """
    from integration.store.db import Database
    from integration.store.inbox import Inbox

    idle = threading.Event()
    handled = threading.Event()

    class ObservedWorker(Worker):
        reads = 0

        def _data_version(self) -> int:
            self.reads += 1
            if self.reads >= 2:  # the first read is the loop's own, before it looks for work
                idle.set()
            return super()._data_version()

    worker = ObservedWorker(services.inbox, {"account.callout": lambda e: handled.set()}, idle_interval=3600.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        assert idle.wait(30), "the worker never went idle"
        other = Inbox(Database(services.config.database_url))  # as the web process would
        event_id = other.record(source="zuora", type="account.callout", object_type="account", object_id="A9",
                                object_key="zuora-account:A9").event_id
        assert handled.wait(30), "the idle worker slept through another connection's commit"
        assert wait_for(lambda: services.inbox.get(event_id).status == "done")
    finally:
        worker.stop()
        thread.join(5)
    assert not thread.is_alive()


# -- real processes ---------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def read_log(path):
    return open(path).read().split("\n")[:-1] if os.path.exists(path) else []


@pytest.fixture
def plugin_env(subprocess_env, tmp_path):
    return {**subprocess_env, "INTEGRATION_HANDLER_PLUGINS": "handler_plugin:handlers",
            "TEST_HANDLER_LOG": str(tmp_path / "handler.log"), "INTEGRATION_LEASE_SECONDS": "2"}


def event_row(env, event_id):
    from integration.store.db import Database
    rows = store_sql(Database(env["DATABASE_URL"])).execute("SELECT status, attempts FROM events WHERE id = ?",
                                                            (event_id,)).fetchall()
    return tuple(rows[0]) if rows else None


def test_serve_handles_events_and_survives_a_worker_killed_mid_event(plugin_env, integration_cmd):
    port = free_port()
    serve = subprocess.Popen([*integration_cmd, "serve", "--port", str(port), "--host", "127.0.0.1",
                              "--workers", "2"], env=plugin_env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    log_path = plugin_env["TEST_HANDLER_LOG"]
    try:
        wait_for(lambda: _up(url))
        fast = requests.post(f"{url}/webhooks/zuora", json={"AccountId": "fast-1"}, auth=AUTH, timeout=10)
        assert fast.status_code == 200
        fast_id = fast.json()["event_id"]
        wait_for(lambda: event_row(plugin_env, fast_id) == ("done", 1))

        slow = requests.post(f"{url}/webhooks/zuora", json={"AccountId": "slow-1"}, auth=AUTH, timeout=10)
        slow_id = slow.json()["event_id"]
        start_line = wait_for(lambda: next((ln for ln in read_log(log_path) if ln.startswith(f"start {slow_id}")),
                                           None))
        worker_pid = int(start_line.split()[2])
        os.kill(worker_pid, signal.SIGKILL)  # mid-event
        wait_for(lambda: event_row(plugin_env, slow_id) == ("done", 2), timeout=30)
        lines = [ln for ln in read_log(log_path) if slow_id in ln]
        assert [ln.split()[0] for ln in lines] == ["start", "start", "done"]
        assert lines[-1].split()[3] == "2"  # completed once, on the second attempt, by a new worker
        assert int(lines[-1].split()[2]) != worker_pid
    finally:
        serve.send_signal(signal.SIGTERM)
        out, _ = serve.communicate(timeout=60)
    assert serve.returncode == 0, out


def _up(url):
    try:
        return requests.get(f"{url}/readyz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_worker_sigterm_finishes_the_event_in_hand(plugin_env, integration_cmd):
    from integration.store.db import Database
    from integration.store.inbox import Inbox
    env = {**plugin_env, "TEST_HANDLER_SLOW": "1.5"}
    Database(env["DATABASE_URL"]).migrate()
    inbox = Inbox(Database(env["DATABASE_URL"]))
    event_id = inbox.record(source="zuora", type="account.callout", object_type="account",
                            object_id="slow-term", object_key="zuora-account:slow-term").event_id
    worker = subprocess.Popen([*integration_cmd, "worker"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: any(ln.startswith(f"start {event_id}") for ln in read_log(env["TEST_HANDLER_LOG"])))
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, out
    assert event_row(env, event_id) == ("done", 1)
    assert [ln.split()[0] for ln in read_log(env["TEST_HANDLER_LOG"])] == ["start", "done"]


def test_a_long_flow_keeps_its_lease_and_one_heartbeat_thread_serves_every_event(services):
    """A flow that runs for many lease lengths is never claimed by another worker: the worker's one
    heartbeat thread extends the lease while the flow runs, event after event, and ends itself
    once the worker is idle."""
    from integration.store.inbox import Inbox

    inbox = Inbox(services.db, lease_seconds=0.3)
    other = Worker(inbox, {"account.callout": lambda event: pytest.fail("a live lease was claimed")},
                   worker_id="other")
    in_flow, finish = threading.Event(), threading.Event()

    def slow(event):
        in_flow.set()
        assert finish.wait(30)
        return Outcome()

    worker = Worker(inbox, {"account.callout": slow}, worker_id="holder")
    threads = []
    for object_id in ("A1", "A2"):
        event_id = record(services, object_id)
        in_flow.clear()
        finish.clear()
        runner = threading.Thread(target=worker.run_once)
        runner.start()
        assert in_flow.wait(10)
        first_expiry = inbox.get(event_id).lease_expires_at
        deadline = time.monotonic() + 10
        while inbox.get(event_id).lease_expires_at <= first_expiry + 3 * timedelta(seconds=0.3):
            assert time.monotonic() < deadline, "the lease was not extended"
            assert not other.run_once()  # never claimable while the holder works on it
            time.sleep(0.02)
        threads.append(worker._heartbeat._thread)
        finish.set()
        runner.join(10)
        assert inbox.get(event_id).status == "done"
    assert threads[0] is threads[1] and threads[0] is not None  # one thread, reused
    deadline = time.monotonic() + 10
    while worker._heartbeat._thread is not None:  # idle: the thread ends itself
        assert time.monotonic() < deadline
        time.sleep(0.05)
