"""The operator actions (integration.actions) count their metrics themselves, once, whichever door
called them: the admin API, the console and the commands get the same count and the same answer."""
from __future__ import annotations

import pytest

from integration import metrics
from integration.actions import failures as actions
from integration.actions import lookups
from integration.actions.limits import EVENT_ID_MAX
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
