"""The console in a real browser (headless Chromium via Playwright), against the sandboxes.

Each test saves a screenshot under its temporary folder. See tests/browser.py for when they run.
"""
import re

import pytest
import requests

from integration_sandbox.local_stack import LocalStack
from tests import browser
from tests.stack_helpers import create_billing_account, create_zuora_account

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium():
    browser.require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = browser.launch(playwright)
        yield instance
        instance.close()


@pytest.fixture
def page(chromium, tmp_path):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    context.close()


@pytest.fixture
def stack(tmp_path):
    # The Zuora tenant lacks the link field at first: creating an account there is rejected.
    with LocalStack(tmp_path / "stack", zuora_options={"custom_fields": ()}) as stack:
        yield stack


def shot(page, tmp_path, name):
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0


def failure_rows(page):
    return page.locator('input[name="ids"]')


def test_retry_a_fixed_failure_and_delete_another(page, stack, tmp_path):
    create_billing_account(stack, account_id="acc-fix", customer_id="cust-fix", name="Fixable Ltd")
    create_billing_account(stack, account_id="acc-drop", customer_id="cust-drop", name="Dropped Ltd")
    stack.wait_idle()
    browser.sign_in(page, stack.service_url, stack.admin_token)
    page.click("nav >> text=Failures")
    assert failure_rows(page).count() == 2
    assert page.locator("td .code").first.inner_text() == "ZUORA_REJECTED"
    row = page.locator("tr", has=page.locator("code", has_text="acc-fix"))
    assert "BillingAccountId__c" in row.inner_text()
    shot(page, tmp_path, "failures")

    # The cause is fixed in Zuora: the custom field now exists.
    stack.zuora_sandbox.custom_fields.add("BillingAccountId__c")
    row.locator('input[name="ids"]').check()
    page.click("text=Retry selected")
    assert "Retried 1 failure(s)" in page.locator(".notice").inner_text()
    stack.wait_idle()
    page.reload()
    assert page.locator("code", has_text="acc-fix").count() == 0
    assert [a["basicInfo"]["BillingAccountId__c"] for a in stack.zuora_state()["accounts"]] == ["acc-fix"]

    page.on("dialog", lambda dialog: dialog.accept())  # the confirmation before a delete
    page.locator("tr", has=page.locator("code", has_text="acc-drop")).locator('input[name="ids"]').check()
    page.click("text=Delete selected")
    assert "Deleted 1 failure(s)" in page.locator(".notice").inner_text()
    assert failure_rows(page).count() == 0
    assert {r["object_id"]: r["status"] for r in stack.services.db.utils().execute(
        "SELECT object_id, status FROM events WHERE source = 'billing'").fetchall()} == {"acc-fix": "done",
                                                                                         "acc-drop": "deleted"}
    shot(page, tmp_path, "after-actions")


def test_the_event_page_shows_the_attempts_and_the_remote_message(page, stack, tmp_path):
    create_billing_account(stack, account_id="acc-x", customer_id="cust-x", name="X Ltd")
    stack.wait_idle()
    browser.sign_in(page, stack.service_url, stack.admin_token)
    page.goto(f"{stack.service_url}/console/failures")
    page.click("td a")
    assert "Attempt history" in page.content()
    history = page.locator("table.data").inner_text()
    assert "ZUORA_REJECTED" in history and "BillingAccountId__c" in history
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", history)
    shot(page, tmp_path, "event")


def test_edit_and_remove_a_meter(page, stack, tmp_path):
    browser.sign_in(page, stack.service_url, stack.admin_token)
    page.click("nav >> text=Meters")
    add = page.locator("section", has_text="Add a meter")
    add.locator('input[name="meter_id"]').fill("api-calls")
    add.locator('input[name="zuora_subscription_number"]').fill("A-S00000001")
    add.locator('input[name="zuora_charge_number"]').fill("C-00000001")
    add.locator('input[name="uom"]').fill("Each")
    add.locator("button", has_text="Add meter").click()
    assert "Meter api-calls added" in page.locator(".notice").inner_text()
    meter = page.locator("section.meter", has_text="api-calls")
    meter.locator('input[name="uom"]').fill("Calls")
    meter.locator('select[name="mode"]').select_option("revenue")
    meter.locator("button", has_text="Save").click()
    assert "Meter api-calls saved" in page.locator(".notice").inner_text()
    row = stack.services.db.utils().execute(
        "SELECT uom, mode FROM meter_settings WHERE meter_id = 'api-calls'").fetchall()[0]
    assert (row["uom"], row["mode"]) == ("Calls", "revenue")
    shot(page, tmp_path, "meters")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("section.meter", has_text="api-calls").locator("button", has_text="Remove").click()
    assert "Meter api-calls removed" in page.locator(".notice").inner_text()
    assert stack.services.db.utils().execute("SELECT COUNT(*) FROM meter_settings").fetchall()[0][0] == 0


def test_link_two_existing_accounts_then_sign_out(page, stack, tmp_path):
    stack.zuora_sandbox.custom_fields.add("BillingAccountId__c")
    requests.post(f"{stack.zuora_url}/_sandbox/config", json={"callout_url": None}, timeout=10).raise_for_status()
    requests.post(f"{stack.billing_url}/_sandbox/config", json={"webhook_url": None}, timeout=10).raise_for_status()
    zuora = create_zuora_account(stack, name="Ada Lovelace")
    create_billing_account(stack, account_id="acc-ada", customer_id="cust-ada", name="Ada Lovelace")
    browser.sign_in(page, stack.service_url, stack.admin_token)
    page.click("nav >> text=Mappings")
    page.fill('input[name="zuora_account_id"]', zuora["accountNumber"])
    page.fill('input[name="billing_account_id"]', "acc-ada")
    page.click("button:has-text('Link accounts')")
    # The form queues the link and shows its event at once; the worker writes it.
    assert "Link queued as evt_" in page.locator(".notice").inner_text()
    assert "/console/events/evt_" in page.url
    stack.wait_idle()
    page.reload()
    assert "badge-done" in page.content()  # the event page: Done
    page.click("nav >> text=Mappings")
    table = page.locator("table.data").inner_text()
    assert zuora["accountId"] in table and "acc-ada" in table and "linked" in table
    [account] = stack.zuora_state()["accounts"]
    assert account["basicInfo"]["BillingAccountId__c"] == "acc-ada"
    shot(page, tmp_path, "linked")
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/console/login$"))
    page.goto(f"{stack.service_url}/console/mappings")
    assert page.url.endswith("/console/login")


def test_without_a_session_pages_redirect_and_a_forged_post_changes_nothing(page, stack, tmp_path):
    create_billing_account(stack, account_id="acc-keep", customer_id="cust-keep", name="Keep Ltd")
    stack.wait_idle()
    page.goto(f"{stack.service_url}/console/failures")
    assert page.url.endswith("/console/login")
    browser.sign_in(page, stack.service_url, stack.admin_token)
    [event_id] = [r["id"] for r in stack.services.db.utils().execute(
        "SELECT id FROM events WHERE status = 'failed'").fetchall()]
    # A cross-site form would carry the session cookie but not the token.
    forged = page.context.request.post(f"{stack.service_url}/console/failures",
                                       form={"action": "delete", "ids": event_id})
    assert forged.status == 400 and "Nothing was changed" in forged.text()
    assert stack.services.db.utils().execute("SELECT status FROM events WHERE id = ?",
                                             (event_id,)).fetchall()[0][0] == "failed"
    page.goto(f"{stack.service_url}/console/failures")
    assert failure_rows(page).count() == 1
    shot(page, tmp_path, "still-there")


def test_a_hostile_name_renders_as_text(page, stack, tmp_path):
    hostile = "<img src=x onerror=alert(1)><script>document.title='owned'</script>"
    create_billing_account(stack, account_id="acc-evil", customer_id="cust-evil", name=hostile)
    stack.wait_idle()
    # make sure the name is on the page: it is in the message
    stack.services.db.utils().execute("UPDATE events SET last_error = ? WHERE status = 'failed'",
                                      (f"name {hostile} refused",))
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    browser.sign_in(page, stack.service_url, stack.admin_token)
    page.goto(f"{stack.service_url}/console/failures")
    assert hostile in page.locator("td.message").inner_text()
    assert page.title() != "owned" and dialogs == [] and page.locator("td.message img").count() == 0
    shot(page, tmp_path, "hostile")


def test_usable_on_a_phone(chromium, stack, tmp_path):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        browser.sign_in(page, stack.service_url, stack.admin_token)
        page.goto(f"{stack.service_url}/console/failures")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        shot(page, tmp_path, "phone")
    finally:
        context.close()
