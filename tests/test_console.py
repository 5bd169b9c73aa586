"""The operator console (CONTRACT §8) through Flask's test client: sign-in, session cookie, CSRF,
headers, escaping, and each form's effect. tests/test_console_browser.py drives it in Chromium."""
import logging
import re
from dataclasses import replace

import pytest

from integration import create_app
from integration.config import Secret
from integration.store import mappings, meters, voids
from tests.conftest import ADMIN_TOKEN
from tests.test_admin_api import failed_event

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client, path="/console/login") -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def sign_in(client, token=ADMIN_TOKEN, **environ):
    return client.post("/console/login", data={"token": token, "csrf_token": csrf_of(client)}, **environ)


@pytest.fixture
def console(client):
    assert sign_in(client).status_code == 302
    return client


def statuses(services):
    return {r["id"]: r["status"] for r in services.db.utils().execute("SELECT id, status FROM events").fetchall()}


@pytest.mark.parametrize("path", ["/console/", "/console/failures", "/console/mappings", "/console/meters",
                                  "/console/sync", "/console/events/evt_1", "/console/mappings.csv"])
def test_a_page_without_a_session_redirects_to_the_login(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"] == "/console/login"


def test_the_login_sets_a_hardened_session_cookie_and_lands_on_the_overview(client):
    response = sign_in(client)
    assert (response.status_code, response.headers["Location"]) == (302, "/console/")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here
    assert ADMIN_TOKEN not in cookie
    page = client.get("/console/").get_data(as_text=True)
    assert "Events by status" in page and ADMIN_TOKEN not in page


def test_https_requests_get_a_secure_cookie(client):
    response = sign_in(client, base_url="https://localhost", headers={"Referer": "https://localhost/console/login"})
    assert "Secure" in response.headers["Set-Cookie"]


def test_over_https_a_post_from_another_origin_is_refused(client):
    response = sign_in(client, base_url="https://localhost", headers={"Referer": "https://evil.example/"})
    assert response.status_code == 400 and "Set-Cookie" not in response.headers


def test_an_unknown_event_is_an_html_404(console):
    response = console.get("/console/events/evt_nope")
    assert response.status_code == 404 and "Not found" in response.get_data(as_text=True)


def test_forwarded_proto_counts_only_when_the_proxy_is_trusted(services):
    for trusted in (False, True):
        services.config = replace(services.config, trust_proxy=trusted)
        client = create_app(services=services).test_client()
        response = sign_in(client, headers={"X-Forwarded-Proto": "https", "Referer": "https://localhost/console/login"})
        assert ("Secure" in response.headers["Set-Cookie"]) is trusted


def test_a_wrong_token_is_refused_logged_and_rate_limited(client, caplog):
    caplog.set_level(logging.WARNING, logger="integration.console")
    for _ in range(5):
        response = sign_in(client, token="wrong")
        assert response.status_code == 401 and "not the admin token" in response.get_data(as_text=True)
    assert sum(r.getMessage() == "console sign-in failed" for r in caplog.records) == 5
    response = sign_in(client)  # even the right token waits out the window from this address
    assert response.status_code == 429 and "Too many failed sign-ins" in response.get_data(as_text=True)
    assert client.get("/console/").status_code == 302
    assert any(r.getMessage() == "console sign-in refused: too many failures" for r in caplog.records)
    # Another address is not held back by this one's failures.
    assert sign_in(client, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 302


def test_logout_ends_the_session(console):
    response = console.post("/console/logout", data={"csrf_token": csrf_of(console, "/console/")})
    assert response.headers["Location"] == "/console/login"
    assert console.get("/console/failures").status_code == 302


def test_rotating_the_admin_token_signs_everyone_out(services, console):
    services.config = replace(services.config, admin_token=Secret("a-new-admin-token-0000-rotated"),
                              secret_key=Secret("explicit-key-kept-across-the-rotation"))
    assert console.get("/console/").status_code == 302


def test_every_page_sets_strict_headers(console):
    for path in ("/console/login", "/console/", "/console/failures", "/console/static/console.css"):
        headers = console.get(path).headers
        assert headers["X-Frame-Options"] == "DENY", path
        assert "default-src 'none'" in headers["Content-Security-Policy"] and "unsafe-inline" not in \
            headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_a_forged_post_without_the_csrf_token_changes_nothing(console, services):
    event_id = failed_event(services, "A1")
    response = console.post("/console/failures", data={"action": "delete", "ids": [event_id]})
    assert response.status_code == 400
    assert "Nothing was changed" in response.get_data(as_text=True)
    assert statuses(services) == {event_id: "failed"}
    forged = console.post("/console/failures", data={"action": "delete", "ids": [event_id], "csrf_token": "x.y"})
    assert forged.status_code == 400 and statuses(services) == {event_id: "failed"}


def test_retry_and_delete_selected_say_how_many(console, services):
    a, b, c = (failed_event(services, f"A{i}") for i in range(3))
    token = csrf_of(console, "/console/failures")
    response = console.post("/console/failures", data={"action": "retry", "ids": [a, b], "csrf_token": token},
                            follow_redirects=True)
    assert "Retried 2 failure(s)" in response.get_data(as_text=True)
    response = console.post("/console/failures", data={"action": "delete", "ids": [c], "csrf_token": token},
                            follow_redirects=True)
    assert "Deleted 1 failure(s)" in response.get_data(as_text=True)
    assert statuses(services) == {a: "pending", b: "pending", c: "deleted"}


def test_retry_all_shown_retries_the_filtered_rows_only(console, services):
    account = failed_event(services, "A1", code="ZUORA_REJECTED")
    other = failed_event(services, "A2", code="BILLING_REJECTED")
    page = console.get("/console/failures?code=ZUORA_REJECTED").get_data(as_text=True)
    shown = re.findall(r'name="shown" value="([^"]+)"', page)
    assert shown == [account]
    response = console.post("/console/failures", follow_redirects=True, data={
        "action": "retry_shown", "shown": shown, "code": "ZUORA_REJECTED", "csrf_token": csrf_of(console, "/console/")})
    assert "Retried 1 failure(s)" in response.get_data(as_text=True)
    assert statuses(services) == {account: "pending", other: "failed"}


def test_a_hostile_name_renders_as_text(console, services):
    hostile = "<script>alert(1)</script>"
    event_id = failed_event(services, "A1", message=f"account name {hostile} refused")
    for path in ("/console/failures", f"/console/events/{event_id}"):
        page = console.get(path).get_data(as_text=True)
        assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_event_page_shows_history_ids_and_vendor_links(services):
    services.config = replace(services.config, ui_links=(
        ("ZUORA_UI_ACCOUNT_URL", "https://zuora.example/apps/CustomerAccount.do?method=view&id={id}"),))
    client = create_app(services=services).test_client()
    sign_in(client)
    event_id = failed_event(services, "Z1", message="Unknown field 'BillingAccountId__c'")
    page = client.get(f"/console/events/{event_id}").get_data(as_text=True)
    assert "Attempt history" in page and "Unknown field &#39;BillingAccountId__c&#39;" in page
    assert "https://zuora.example/apps/CustomerAccount.do?method=view&amp;id=Z1" in page
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)


def test_meters_can_be_added_edited_and_removed(console, services):
    token = csrf_of(console, "/console/meters")
    form = {"meter_id": "m-1", "zuora_subscription_number": "A-S1", "zuora_charge_number": "C-1", "uom": "Each",
            "mode": "quantity", "csrf_token": token}
    assert "Meter m-1 added" in console.post("/console/meters", data=form, follow_redirects=True).get_data(as_text=True)
    page = console.post("/console/meters", data={**form, "uom": "Hours"}, follow_redirects=True).get_data(as_text=True)
    assert "Meter m-1 saved" in page and meters.get_meter(services.db, "m-1").uom == "Hours"
    bad = console.post("/console/meters", data={**form, "uom": "a\x07b"}, follow_redirects=True).get_data(as_text=True)
    assert "Meter not saved: uom:" in bad
    page = console.post("/console/meters/delete", data={"meter_id": "m-1", "csrf_token": token},
                        follow_redirects=True).get_data(as_text=True)
    assert "Meter m-1 removed" in page and meters.get_meter(services.db, "m-1") is None


def test_mappings_search_by_either_id_and_download_csv(console, services):
    with services.db.transaction() as conn:
        mappings.link("account", zuora_id="Z1", zuora_number="A001", billing_id="B1", origin="zuora")(conn)
        mappings.link("account", zuora_id="Z2", zuora_number="A002", billing_id="=cmd()", origin="linked")(conn)
    assert "A002" not in console.get("/console/mappings?q=B1").get_data(as_text=True)
    assert "B1" in console.get("/console/mappings?q=A001").get_data(as_text=True)
    csv = console.get("/console/mappings.csv")
    assert csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0].startswith("type,zuora_id,zuora_number,billing_id") and len(lines) == 3
    assert ",'=cmd()," in lines[2]  # a formula is defused for spreadsheets


def test_the_link_form_queues_the_link_and_shows_its_event_or_refuses_at_once(console, services):
    with services.db.transaction() as conn:
        mappings.link("account", zuora_id="Z1", zuora_number="A001", billing_id="B1", origin="zuora")(conn)
    token = csrf_of(console, "/console/mappings")
    refused = console.post("/console/links", data={"zuora_account_id": "A001", "billing_account_id": "B2",
                                                   "csrf_token": token}, follow_redirects=True)
    assert "Not linked: Zuora account A001 is already linked to billing account B1" in refused.get_data(as_text=True)
    assert statuses(services) == {}  # refused at once: nothing queued
    response = console.post("/console/links", data={"zuora_account_id": "Z2", "billing_account_id": "B2",
                                                    "csrf_token": token})
    [event_id] = statuses(services)
    assert response.status_code == 302 and response.headers["Location"] == f"/console/events/{event_id}"
    page = console.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Link queued as {event_id}" in page and "account.link" in page
    assert statuses(services) == {event_id: "pending"}  # the worker writes it; the form never waits


def test_a_voided_invoice_s_row_says_how_its_twin_was_undone(console, services):
    with services.db.transaction() as conn:
        mappings.link("invoice", zuora_id="ZI1", zuora_number="INV001", billing_id="inv-1", origin="billing")(conn)
        voids.record_reversal("inv-1", "reversed", "CM-42")(conn)
    page = console.get("/console/mappings?type=invoice").get_data(as_text=True)
    assert re.search(r"Voided: reversed \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC, credit memo <code>CM-42</code>", page)


def test_sync_page_queues_at_most_ten(console, services):
    token = csrf_of(console, "/console/sync")
    page = console.post("/console/sync", data={"zuora_account_ids": "Z1, Z2", "billing_account_ids": "B1",
                                               "csrf_token": token}, follow_redirects=True).get_data(as_text=True)
    assert "Queued 3 sync(s); 0 already in progress" in page
    many = " ".join(f"Z{i}" for i in range(11))
    page = console.post("/console/sync", data={"zuora_account_ids": many, "csrf_token": token},
                        follow_redirects=True).get_data(as_text=True)
    assert "Nothing queued" in page and "At most 10 IDs" in page
    assert services.db.utils().execute("SELECT COUNT(*) FROM events").fetchall()[0][0] == 3
