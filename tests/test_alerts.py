"""Failure-alert digests (CONTRACT §8) against a real local receiver: shape, one per slot across
processes, retried next slot when the receiver is down, never blocking the caller."""
import json
import logging
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from integration.config import Secret
from integration.services import Services
from integration.worker.alerts import AlertJob, slot_of
from tests.conftest import make_config
from tests.test_admin_api import failed_event

T0 = datetime(2026, 3, 1, 12, 0, 10, tzinfo=timezone.utc)


class Receiver:
    """A tiny incoming-webhook endpoint: records each JSON body; ``hold`` keeps answers back."""

    def __init__(self, status: int = 200):
        self.bodies: list[dict] = []
        self.status = status
        self.hold = threading.Event()
        self.hold.set()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.arrived.set()
                receiver.hold.wait(30)
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/secret-path-T0KEN"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.hold.set()
    r.stop()


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def make_services(tmp_path, url, **overrides):
    config = make_config(tmp_path, alert_webhook_url=Secret(url), alert_interval_seconds=300.0,
                         public_url="https://sync.example.com", **overrides)
    services = Services.from_config(config)
    services.db.migrate()
    return services


def run(job):
    job()
    job.wait()


def digests(services):
    return [dict(r) for r in services.db.utils().execute("SELECT * FROM alert_digests ORDER BY slot").fetchall()]


def test_a_digest_counts_by_code_lists_failures_and_links_the_console(tmp_path, receiver):
    services = make_services(tmp_path, receiver.url)
    failed_event(services, "A1", code="ZUORA_REJECTED", message="Unknown field 'BillingAccountId__c'")
    failed_event(services, "A2", code="ZUORA_REJECTED", message="refused")
    failed_event(services, "I1", object_type="invoice", type="invoice.finalized", code="INVALID_DATA",
                 message="lines[0].amount: not a number")
    clock = Clock(datetime.now(timezone.utc))
    run(AlertJob(services, clock=clock))
    [body] = receiver.bodies
    assert list(body) == ["text"]
    text = body["text"]
    assert text.splitlines()[0] == "3 new sync failure(s): ZUORA_REJECTED 2, INVALID_DATA 1"
    assert "• account A1 — ZUORA_REJECTED: Unknown field 'BillingAccountId__c'" in text
    assert "• invoice I1 — INVALID_DATA: lines[0].amount: not a number" in text
    assert text.endswith("Console: https://sync.example.com/console/failures")


def test_only_the_first_ten_are_listed(tmp_path, receiver):
    services = make_services(tmp_path, receiver.url)
    for i in range(12):
        failed_event(services, f"A{i:02d}")
    run(AlertJob(services, clock=Clock(datetime.now(timezone.utc))))
    lines = receiver.bodies[0]["text"].splitlines()
    assert sum(line.startswith("• ") for line in lines) == 10
    assert "… and 2 more" in lines


def test_one_digest_per_slot_across_processes_and_only_new_failures_next(tmp_path, receiver):
    services = make_services(tmp_path, receiver.url)
    failed_event(services, "A1")
    clock = Clock(datetime.now(timezone.utc))
    jobs = [AlertJob(services, clock=clock, worker_id=f"host-{i}") for i in range(3)]
    for job in jobs:
        run(job)
    for job in jobs:  # and again within the slot
        run(job)
    assert len(receiver.bodies) == 1
    assert [d["worker_id"] for d in digests(services)] == ["host-0"]
    failed_event(services, "A2", key_prefix="zuora-account-2")
    clock.now += timedelta(seconds=300)
    run(jobs[2])
    assert len(receiver.bodies) == 2
    second = receiver.bodies[1]["text"]
    assert second.startswith("1 new sync failure(s)") and "A2" in second and "A1" not in second


def test_nothing_new_sends_nothing(tmp_path, receiver):
    services = make_services(tmp_path, receiver.url)
    run(AlertJob(services, clock=Clock(datetime.now(timezone.utc))))
    assert receiver.bodies == [] and digests(services)[0]["delivered_at"] is not None


def test_a_receiver_that_is_down_gets_the_failures_next_slot(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="integration.alerts")
    down = Receiver()
    down.stop()  # nothing listens on its port now
    services = make_services(tmp_path, down.url)
    failed_event(services, "A1")
    clock = Clock(datetime.now(timezone.utc))
    job = AlertJob(services, clock=clock)
    run(job)
    [first] = digests(services)
    assert first["delivered_at"] is None and first["error"] == "ConnectionError" and first["failures"] == 1
    assert "secret-path-T0KEN" not in caplog.text  # the webhook URL is a credential
    up = Receiver()
    try:
        services.config = replace(services.config, alert_webhook_url=Secret(up.url))
        failed_event(services, "A2", key_prefix="zuora-account-2")
        clock.now += timedelta(seconds=300)
        run(job)
        [body] = up.bodies
        assert body["text"].startswith("2 new sync failure(s)") and "A1" in body["text"] and "A2" in body["text"]
    finally:
        up.stop()


def test_an_error_status_is_not_a_delivery(tmp_path, receiver):
    receiver.status = 500
    services = make_services(tmp_path, receiver.url)
    failed_event(services, "A1")
    run(AlertJob(services, clock=Clock(datetime.now(timezone.utc))))
    assert digests(services)[0]["error"] == "HTTP 500" and digests(services)[0]["delivered_at"] is None


def test_a_slow_receiver_never_holds_up_the_caller(tmp_path, receiver):
    services = make_services(tmp_path, receiver.url)
    failed_event(services, "A1")
    receiver.hold.clear()  # the receiver keeps the request open until told
    job = AlertJob(services, clock=Clock(datetime.now(timezone.utc)))
    job()  # returns while the POST is still unanswered
    assert receiver.arrived.wait(10)
    assert digests(services)[0]["delivered_at"] is None
    receiver.hold.set()
    job.wait()
    assert digests(services)[0]["delivered_at"] is not None


def test_without_a_webhook_url_the_job_does_nothing(services):
    AlertJob(services)()
    assert services.db.utils().execute("SELECT COUNT(*) FROM alert_digests").fetchall()[0][0] == 0


def test_slots_follow_the_interval():
    assert slot_of(T0, 300) == "alert:2026-03-01T12:00:00Z"
    assert slot_of(T0 + timedelta(minutes=5), 300) == "alert:2026-03-01T12:05:00Z"
    assert slot_of(T0, 3600) == "alert:2026-03-01T12:00:00Z"


def test_the_console_and_alert_variables_are_read_and_checked():
    from integration.config import ConfigError, load_config
    from tests.conftest import service_env

    env = {**service_env("sqlite:///x.db"), "INTEGRATION_ALERT_WEBHOOK_URL": "https://hooks.example/T/B/secret",
           "INTEGRATION_ALERT_INTERVAL_SECONDS": "60", "PUBLIC_URL": "https://sync.example.com/",
           "INTEGRATION_SECRET_KEY": "k" * 40, "INTEGRATION_TRUST_PROXY": "true",
           "ZUORA_UI_ACCOUNT_URL": "https://z.example/apps/CustomerAccount.do?method=view&id={id}"}
    config = load_config(env)
    assert config.alert_webhook_url.reveal() == "https://hooks.example/T/B/secret"
    assert "hooks.example" not in repr(config) and "https://hooks.example/T/B/secret" in config.secrets()
    assert (config.alert_interval_seconds, config.public_url, config.trust_proxy) == (60.0, "https://sync.example.com",
                                                                                       True)
    assert config.ui_links == (("ZUORA_UI_ACCOUNT_URL", env["ZUORA_UI_ACCOUNT_URL"]),)
    with pytest.raises(ConfigError) as caught:
        load_config({**env, "INTEGRATION_ALERT_WEBHOOK_URL": "slack", "INTEGRATION_ALERT_INTERVAL_SECONDS": "1",
                     "BILLING_UI_ACCOUNT_URL": "https://b.example/accounts", "INTEGRATION_TRUST_PROXY": "maybe"})
    assert set(caught.value.problems) == {"INTEGRATION_ALERT_WEBHOOK_URL", "INTEGRATION_ALERT_INTERVAL_SECONDS",
                                          "BILLING_UI_ACCOUNT_URL", "INTEGRATION_TRUST_PROXY"}


def test_the_worker_command_sends_the_digest(tmp_path, receiver, subprocess_env, integration_cmd):
    import subprocess

    services = Services.from_config(make_config(tmp_path))
    services.db.migrate()
    failed_event(services, "A1", message="refused by Zuora")
    # The scheduled retry (default 11:30 and 23:30 UTC, run up to an hour late) would take the failure off
    # the list before the digest: its slot is put twelve hours away from now.
    far = datetime.now(timezone.utc) + timedelta(hours=12)
    env = {**subprocess_env, "INTEGRATION_ALERT_WEBHOOK_URL": receiver.url, "PUBLIC_URL": "https://sync.example.com",
           "INTEGRATION_RETRY_CRON": f"{far.minute} {far.hour} * * *"}
    worker = subprocess.Popen([*integration_cmd, "worker"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert receiver.arrived.wait(60), "the worker sent no digest"
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert receiver.bodies[0]["text"].startswith("1 new sync failure(s): ZUORA_REJECTED 1")
    assert "secret-path-T0KEN" not in stderr
