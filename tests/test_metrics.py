"""/metrics: Prometheus text that parses, counters that move with real work, and store gauges that
are right when several processes share the multiprocess directory."""
import os
import subprocess
import sys
import textwrap
from datetime import timedelta

import requests_mock
from prometheus_client.parser import text_string_to_metric_families

from integration.billing.togai.client import BillingClient
from integration.domain.errors import InvalidData, TransientError
from integration.flows.outcome import Outcome
from integration.store.types import to_db_time
from integration.worker.loop import Worker
from tests.conftest import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CALLOUT_AUTH = ("zuora", "callout-password-2b8e")
FAMILIES = ["integration_events_received", "integration_events_done", "integration_events_failed",
            "integration_events_rescheduled", "integration_failures_retried", "integration_failures_deleted",
            "integration_remote_calls", "integration_remote_call_seconds", "integration_remote_rate_limited",
            "integration_inbox_depth", "integration_inbox_oldest_due_age_seconds", "integration_failures",
            "integration_store_up"]


def scrape(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {family.name: family for family in text_string_to_metric_families(response.get_data(as_text=True))}


def value(families, sample_name, **labels):
    """The value of one sample (0 when the labelled child does not exist yet)."""
    family_name = sample_name
    for suffix in ("_total", "_count", "_sum", "_bucket"):
        if sample_name.endswith(suffix) and sample_name[:-len(suffix)] in families:
            family_name = sample_name[:-len(suffix)]
    matches = [s.value for s in families[family_name].samples
               if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) <= 1, matches
    return matches[0] if matches else 0.0


def test_every_family_is_exposed_and_parses(client):
    families = scrape(client)
    missing = [name for name in FAMILIES if name not in families]
    assert missing == []
    assert families["integration_remote_call_seconds"].type == "histogram"
    assert families["integration_inbox_depth"].type == "gauge"
    assert value(families, "integration_store_up") == 1.0


def test_received_done_failed_and_rescheduled_move(client, services):
    before = scrape(client)
    for account in ("ok-1", "bad-1", "slow-1"):
        response = client.post("/webhooks/zuora", json={"AccountId": account}, auth=CALLOUT_AUTH)
        assert response.status_code == 200
    sync = client.post("/admin/sync", headers=AUTH, json={"billing_account_ids": ["B1"]})
    assert sync.get_json()["results"][0]["status"] == "queued"
    after_intake = scrape(client)
    received = "integration_events_received_total"
    assert value(after_intake, received, source="zuora", type="account.callout") == \
        value(before, received, source="zuora", type="account.callout") + 3
    assert value(after_intake, received, source="admin", type="account.updated") == \
        value(before, received, source="admin", type="account.updated") + 1
    assert value(after_intake, "integration_inbox_depth", status="pending") == 4

    def handle(event):
        if event.object_id.startswith("bad"):
            raise InvalidData("primaryEmail", "missing")
        if event.object_id.startswith("slow"):
            raise TransientError("HTTP 503 from Zuora", retry_after=600)
        return Outcome()

    worker = Worker(services.inbox, {"account.callout": handle, "account.updated": handle})
    assert worker.drain() == 4
    after = scrape(client)
    labels = {"source": "zuora", "type": "account.callout"}
    assert value(after, "integration_events_done_total", **labels) == \
        value(before, "integration_events_done_total", **labels) + 1
    assert value(after, "integration_events_done_total", source="admin", type="account.updated") == \
        value(before, "integration_events_done_total", source="admin", type="account.updated") + 1
    assert value(after, "integration_events_failed_total", **labels, code="INVALID_DATA") == \
        value(before, "integration_events_failed_total", **labels, code="INVALID_DATA") + 1
    assert value(after, "integration_events_rescheduled_total", **labels) == \
        value(before, "integration_events_rescheduled_total", **labels) + 1
    assert value(after, "integration_inbox_depth", status="pending") == 1  # the rescheduled one
    assert value(after, "integration_failures", code="INVALID_DATA") == 1
    assert value(after, "integration_failures", code="AUTH_FAILED") == 0

    retried = "integration_failures_retried_total"
    client.post("/admin/failures/retry", headers=AUTH, json={"all": True})
    assert value(scrape(client), retried, trigger="admin") == value(after, retried, trigger="admin") + 1
    assert value(scrape(client), "integration_failures", code="INVALID_DATA") == 0


def test_oldest_due_age_reports_the_oldest_waiting_event(client, services):
    assert value(scrape(client), "integration_inbox_oldest_due_age_seconds") == 0.0
    event_id = services.inbox.record(source="zuora", type="account.callout", object_type="account",
                                     object_id="A1", object_key="zuora-account:A1").event_id
    with services.db.utils().conn as conn:
        conn.execute("UPDATE events SET next_attempt_at = ? WHERE id = ?",
                     (to_db_time(services.inbox.clock() - timedelta(hours=1)), event_id))
    age = value(scrape(client), "integration_inbox_oldest_due_age_seconds")
    assert 3600 <= age < 3700


def test_remote_calls_latency_and_429_move(client):
    before = scrape(client)
    endpoint = {"api": "billing", "method": "GET", "endpoint": "/accounts/{account_id}"}
    sleeps = []
    billing = BillingClient("https://billing.test", "token-for-metrics-test", sleep=sleeps.append)
    with requests_mock.Mocker() as mock:
        mock.get("https://billing.test/accounts/acc1", [
            {"status_code": 429, "headers": {"Retry-After": "1"}, "json": {"message": "slow down"}},
            {"status_code": 200, "json": {"id": "acc1"}}])
        assert billing.get_account("acc1") == {"id": "acc1"}
    assert sleeps and sleeps[0] >= 1
    after = scrape(client)
    calls = "integration_remote_calls_total"
    for status in ("429", "200"):
        assert value(after, calls, **endpoint, status=status) == value(before, calls, **endpoint, status=status) + 1
    count = "integration_remote_call_seconds_count"
    assert value(after, count, **endpoint) == value(before, count, **endpoint) + 2
    assert value(after, "integration_remote_rate_limited_total", api="billing") == \
        value(before, "integration_remote_rate_limited_total", api="billing") + 1


def test_store_trouble_still_answers_the_scrape(client, services, monkeypatch):
    def broken():
        raise RuntimeError("disk gone")
    monkeypatch.setattr(services.inbox, "depth", broken)
    families = scrape(client)
    assert value(families, "integration_store_up") == 0.0
    assert "integration_inbox_depth" not in families
    assert "integration_events_received" in families


SCRAPER = textwrap.dedent("""
    import sys
    from integration import create_app, metrics
    from integration.config import Config, Secret
    from integration.services import Services

    services = Services.from_config(Config(
        database_url=sys.argv[1], zuora_base_url="http://z.invalid", zuora_client_id="c",
        zuora_client_secret=Secret("s-secret"), billing_base_url="http://b.invalid",
        billing_api_token=Secret("t-token"), billing_webhook_secret=Secret("whsec_dGVzdA=="),
        admin_token=Secret("a-token-long-enough-1234"), zuora_callout_auth_none=True))
    services.db.migrate()
    for i in range(int(sys.argv[2])):
        services.inbox.record(source="zuora", type="account.callout", object_type="account",
                              object_id=f"{sys.argv[3]}{i}", object_key=f"zuora-account:{sys.argv[3]}{i}")
    metrics.EVENTS_RECEIVED.labels(source="zuora", type="account.callout").inc(int(sys.argv[2]))
    sys.stdout.write(create_app(services=services).test_client().get("/metrics").get_data(as_text=True))
""")


def test_multiprocess_mode_sums_counters_and_reports_depth_once(tmp_path):
    """Two processes (as two gunicorn workers) share the metrics directory: counters add up, and
    the inbox depth is one sample with the store's current value, not a stale copy per process."""
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    database_url = f"sqlite:///{tmp_path}/shared.db"

    def run(events, prefix):
        done = subprocess.run([sys.executable, "-c", SCRAPER, database_url, str(events), prefix], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return {f.name: f for f in text_string_to_metric_families(done.stdout)}

    first = run(2, "first")
    assert value(first, "integration_inbox_depth", status="pending") == 2
    second = run(1, "second")
    depth = [s for s in second["integration_inbox_depth"].samples if s.labels.get("status") == "pending"]
    assert [(s.labels, s.value) for s in depth] == [({"status": "pending"}, 3.0)]
    assert value(second, "integration_events_received_total", source="zuora", type="account.callout") == 3
