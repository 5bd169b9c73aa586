"""A search or an ID no record can have — a NUL, a lone surrogate, another control or format
character — is refused at the edge with a 400 naming the field (issue 23, item 6), on both engines:
PostgreSQL cannot even be asked about a NUL, and that failed query used to read as a 503 "store
unavailable". The admin API, the console and ``integration events show``."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from integration.cli import main
from integration.domain.identifiers import NOT_PRINTABLE_MESSAGE
from integration.store import meters
from tests.conftest import ADMIN_TOKEN, service_env
from tests.test_console import csrf_of, sign_in

pytestmark = pytest.mark.both_engines  # SQLite and PostgreSQL (tests/conftest.py)

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# As they arrive in a path or a query string (werkzeug decodes a bad UTF-8 sequence to U+FFFD, which
# is printable and harmless: those stay a 404).
UNPRINTABLE = {"NUL": "%00", "ESC": "%1B", "right-to-left override": "%E2%80%AE", "zero-width space": "%E2%80%8B"}


@pytest.fixture
def console(client):
    assert sign_in(client).status_code == 302
    return client


@pytest.mark.parametrize("char", UNPRINTABLE.values(), ids=UNPRINTABLE.keys())
def test_admin_event_id_in_the_path(client, char):
    response = client.get(f"/admin/events/evt_{char}1", headers=ADMIN)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_path", "detail": {"event_id": [NOT_PRINTABLE_MESSAGE]}}
    assert client.get("/admin/events/evt_%ED%A0%80", headers=ADMIN).status_code == 404  # U+FFFD: not found


@pytest.mark.parametrize("char", UNPRINTABLE.values(), ids=UNPRINTABLE.keys())
def test_admin_meter_id_in_the_path(client, services, char):
    meters.put_meter(services.db, "m1", zuora_subscription_number="A-S1", zuora_charge_number="C-1", uom="x",
                     mode="quantity")
    response = client.delete(f"/admin/meters/m1{char}", headers=ADMIN)
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_path", "detail": {"meter_id": [NOT_PRINTABLE_MESSAGE]}}
    assert [m.meter_id for m in meters.list_meters(services.db)] == ["m1"]


def test_admin_token_comes_before_the_path_check(client):
    assert client.get("/admin/events/evt_%001").status_code == 401


@pytest.mark.parametrize("char", UNPRINTABLE.values(), ids=UNPRINTABLE.keys())
def test_console_event_page(console, char):
    response = console.get(f"/console/events/evt_{char}1")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Not an event ID" in page and "The event ID in this address must contain only printable" in page
    assert console.get("/console/events/evt_nope").status_code == 404


@pytest.mark.parametrize("char", UNPRINTABLE.values(), ids=UNPRINTABLE.keys())
def test_console_mapping_search(console, char):
    response = console.get(f"/console/mappings?q=A{char}1")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "The search must contain only printable characters" in page and "nothing was looked up" in page
    assert console.get("/console/mappings?q=A+1").status_code == 200  # a space finds nothing, harmlessly


def test_console_meter_removal_form(console, services):
    meters.put_meter(services.db, "m1", zuora_subscription_number="A-S1", zuora_charge_number="C-1", uom="x",
                     mode="quantity")
    response = console.post("/console/meters/delete", data={"meter_id": "m1\x00",
                                                            "csrf_token": csrf_of(console, "/console/meters")})
    assert response.status_code == 302  # the console's forms answer with a redirect and a message
    page = console.get(response.headers["Location"]).get_data(as_text=True)
    assert "Meter not removed: the meter ID must contain only printable characters" in page
    assert [m.meter_id for m in meters.list_meters(services.db)] == ["m1"]


@pytest.mark.parametrize("event_id", ["evt_\x00", "evt_\udcff", "evt_\x1b[2J", "evt_\u202e"],
                         ids=["NUL", "undecodable byte", "ESC", "right-to-left override"])
def test_events_show_refuses_an_unprintable_id_as_a_usage_error(services, event_id):
    result = CliRunner().invoke(main, ["events", "show", event_id], env=service_env(services.config.database_url))
    assert result.exit_code == 2, result.output
    assert "Invalid value for 'EVENT_ID': not an event ID: it must contain only printable characters" in result.output
    assert "busy or unavailable" not in result.output
