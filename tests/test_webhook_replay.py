"""Replayed deliveries (issue 23, item 5), on both engines: every delivery ID — the billing webhook's
``webhook-id``, Zuora's ``Zuora-Notification-Id`` — is remembered for its sender's window, whether its
delivery created an event or was coalesced into a pending one, so sending it again creates no work."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import requests

from integration import create_app
from integration.domain.deliveries import BILLING_DELIVERY_WINDOW, ZUORA_DELIVERY_WINDOW
from integration.services import Services
from integration.worker.housekeeping import ForgetDeliveriesJob
from integration_sandbox.server import ServerThread
from tests.engines import store_sql
from tests.fakes import FakeClock
from tests.test_webhook_billing import signed_headers
from tests.test_webhook_zuora import AUTH

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)


class Clock:
    """The inbox's clock: now, until a test moves it."""

    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(config, clock):
    services = Services.from_config(config, clock=clock)
    services.db.migrate()
    yield services
    services.db.close()


def count(services, sql: str) -> int:
    return store_sql(services.db).execute(sql).fetchall()[0][0]


def run_pending(services) -> list[str]:
    """What a worker does to every due event, minus the flow: claim it and finish it."""
    ran = []
    while events := services.inbox.claim("test-worker"):
        with services.db.transaction() as tx:
            services.inbox.finish(events[0].id, "test-worker", tx)
        ran.append(events[0].id)
    return ran


def billing_delivery(webhook_id: str, object_id: str = "acc-1") -> tuple[bytes, dict]:
    body = json.dumps({"type": "account.updated", "data": {"id": object_id}}).encode()
    return body, signed_headers(body, msg_id=webhook_id)


def post_billing(client, body: bytes, headers: dict):
    return client.post("/webhooks/billing", data=body, content_type="application/json", headers=headers)


def post_zuora(client, notification_id: str, account_id: str = "A1"):
    return client.post("/webhooks/zuora", json={"AccountId": account_id},
                       headers={**AUTH, "Zuora-Notification-Id": notification_id})


def test_a_coalesced_billing_delivery_replayed_after_its_event_ran_creates_no_event(client, services):
    first = post_billing(client, *billing_delivery("msg_first")).get_json()["event_id"]
    second = billing_delivery("msg_second")
    assert post_billing(client, *second).get_json()["event_id"] == first  # coalesced into the pending event
    assert run_pending(services) == [first]
    replay = post_billing(client, *second)  # the same bytes and signature, inside the 5-minute tolerance
    assert replay.status_code == 200
    assert replay.get_json() == {"accepted": True, "event_id": first}
    assert post_billing(client, *billing_delivery("msg_first")).get_json()["event_id"] == first
    assert count(services, "SELECT COUNT(*) FROM events") == 1
    assert run_pending(services) == []
    # A new delivery for the same object is new work, as before.
    assert post_billing(client, *billing_delivery("msg_third")).get_json()["event_id"] != first


def test_a_coalesced_zuora_notification_repeated_after_its_event_ran_creates_no_event(client, services):
    first = post_zuora(client, "n-1").get_json()["event_id"]
    assert post_zuora(client, "n-2").get_json()["event_id"] == first
    assert run_pending(services) == [first]
    repeat = post_zuora(client, "n-2")
    assert repeat.status_code == 200
    assert repeat.get_json() == {"success": True, "accepted": True, "event_id": first}
    assert count(services, "SELECT COUNT(*) FROM events") == 1
    assert run_pending(services) == []
    # Without a notification ID there is nothing to remember: each callout is its own delivery.
    assert client.post("/webhooks/zuora", json={"AccountId": "A1"}, headers=AUTH).get_json()["event_id"] != first


def test_delivery_ids_are_remembered_for_their_senders_window_then_forgotten(client, services, clock):
    first = post_zuora(client, "n-1").get_json()["event_id"]
    assert post_zuora(client, "n-2").get_json()["event_id"] == first
    post_billing(client, *billing_delivery("msg_1", "acc-9"))
    run_pending(services)
    job = ForgetDeliveriesJob(services, every=0.0)
    clock.now += BILLING_DELIVERY_WINDOW - timedelta(seconds=1)
    job()
    assert count(services, "SELECT COUNT(*) FROM webhook_deliveries") == 3
    clock.now += timedelta(seconds=1)
    job()  # the billing delivery's window has passed; Zuora's has not
    assert count(services, "SELECT COUNT(*) FROM webhook_deliveries") == 2
    clock.now += ZUORA_DELIVERY_WINDOW - BILLING_DELIVERY_WINDOW - timedelta(seconds=1)
    job()
    assert post_zuora(client, "n-2").get_json()["event_id"] == first  # still a repeat on the window's last second
    clock.now += timedelta(seconds=1)
    job()
    assert count(services, "SELECT COUNT(*) FROM webhook_deliveries") == 0
    assert count(services, "SELECT COUNT(*) FROM events") == 2


def test_the_forget_job_touches_the_store_once_per_interval():
    monotonic, calls = FakeClock(), []
    inbox = SimpleNamespace(forget_deliveries=lambda: calls.append(monotonic.now) or 0)
    job = ForgetDeliveriesJob(SimpleNamespace(inbox=inbox), every=600.0, monotonic=monotonic)  # type: ignore[arg-type]
    for _ in range(4):
        job()
        monotonic.sleep(300)
    assert calls == [1000.0, 1600.0]


def test_concurrent_copies_of_deliveries_record_one_each(services):
    app = create_app(services=services)
    with ServerThread(app) as server:
        def burst(notification_id: str, copies: int = 16) -> set[tuple[int, str]]:
            results: list[tuple[int, str]] = []
            barrier = threading.Barrier(copies)

            def send() -> None:
                barrier.wait()
                r = requests.post(f"{server.url}/webhooks/zuora", json={"AccountId": "A-race"},
                                  headers={**AUTH, "Zuora-Notification-Id": notification_id}, timeout=30)
                results.append((r.status_code, r.json()["event_id"]))

            threads = [threading.Thread(target=send) for _ in range(copies)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(results) == copies
            return set(results)

        [(status, first)] = burst("n-new")          # copies of a new delivery: one event
        assert status == 200
        assert burst("n-joins") == {(200, first)}  # copies of one that joins the pending event
        assert run_pending(services) == [first]
        assert burst("n-joins") == {(200, first)}  # and again after that event ran: still no new work
    assert count(services, "SELECT COUNT(*) FROM events") == 1
    assert count(services, "SELECT COUNT(*) FROM webhook_deliveries") == 2
