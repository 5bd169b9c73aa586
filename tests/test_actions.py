"""The operator actions (integration.actions) count their metrics themselves, once, whichever door
called them: the admin API, the console and the commands get the same count and the same answer."""
from __future__ import annotations

import pytest

from integration import metrics
from integration.actions import failures as actions
from integration.actions import links, lookups
from integration.actions.limits import EVENT_ID_MAX
from integration.store import mappings
from tests.test_failures import fail

pytestmark = pytest.mark.both_engines

def _value(counter, **labels) -> float:
    sample = counter.labels(**labels) if labels else counter
    return sample._value.get()


@pytest.mark.parametrize("via", ["admin", "console", "cli"])
def test_a_retry_is_counted_once_by_the_action_whatever_the_door(services, via):
    event_id = fail(services)
    before = _value(metrics.FAILURES_RETRIED, trigger="admin")
    acted = actions.retry(services.db, actions.Selector(ids=(event_id, "evt_missing")), via=via)
    assert (acted.count, acted.not_found) == (1, ["evt_missing"])
    assert acted.as_json("retried") == {"retried": 1, "not_found": ["evt_missing"]}
    assert _value(metrics.FAILURES_RETRIED, trigger="admin") == before + 1


@pytest.mark.parametrize("via", ["admin", "console", "cli"])
def test_a_delete_is_counted_once_by_the_action_whatever_the_door(services, via):
    fail(services)
    before = _value(metrics.FAILURES_DELETED)
    acted = actions.delete(services.db, actions.Selector(all=True), via=via)
    assert acted.as_json("deleted") == {"deleted": 1}
    assert _value(metrics.FAILURES_DELETED) == before + 1


def test_an_event_id_over_the_limit_is_not_looked_up(services):
    assert lookups.find_event(services.inbox, "x" * (EVENT_ID_MAX + 1)) is None
    event_id = fail(services)
    found = lookups.find_event(services.inbox, event_id)
    assert found is not None and found.id == event_id


def test_a_link_is_refused_or_queued_at_once_and_only_waited_for_on_request(services):
    with services.db.transaction() as conn:
        mappings.link("account", zuora_id="Z1", zuora_number="A1", billing_id="B1", origin="zuora")(conn)
    refused = links.request(services.inbox, "A1", "B2", via="admin")
    assert (refused.status, refused.event_id) == ("refused", None)
    assert refused.message == "Zuora account A1 is already linked to billing account B1"
    queued = links.request(services.inbox, "Z2", "B2", via="console")
    assert queued.status == "queued" and services.inbox.get(queued.event_id).status == "pending"
    assert links.wait(services.inbox, queued, timeout=0).status == "queued"  # no worker yet
    [event] = services.inbox.claim("test-worker", limit=5)
    with services.db.transaction() as tx:
        services.inbox.finish(event.id, "test-worker", tx)
    linked = links.wait(services.inbox, queued, timeout=0)
    assert (linked.status, linked.event_id, linked.message) == (
        "linked", queued.event_id, "linked Zuora account Z2 to billing account B2")


def test_a_link_the_worker_refused_is_kept_deleted_once_the_command_has_seen_it(services):
    queued = links.request(services.inbox, "Z3", "B3", via="cli")
    [event] = services.inbox.claim("test-worker", limit=5)
    services.inbox.fail(event.id, "test-worker", "INVALID_DATA", "Zuora account Z3 is already linked to billing"
                                                                 " account B9 (BillingAccountId__c)")
    before = _value(metrics.FAILURES_DELETED)
    refused = links.wait(services.inbox, queued, timeout=0)
    assert (refused.status, refused.message) == (
        "refused", "Zuora account Z3 is already linked to billing account B9 (BillingAccountId__c)")
    assert services.inbox.get(event.id).status == "deleted"  # off the failure list, kept for audit
    assert _value(metrics.FAILURES_DELETED) == before  # a refused link is not counted as deleted
