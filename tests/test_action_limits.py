"""One limit per operator action, whichever door the operator uses (issue 25): the admin API, the
console and the commands refuse the same over-limit input whole, and take the same input at the limit.
Every limit is one constant of integration.actions.limits, read here too, so the test follows it."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from integration.actions.limits import (
    ACCOUNT_ID_MAX,
    EVENT_ID_MAX,
    ID_MAX,
    LINK_WAIT_MAX,
    LINK_WAIT_SECONDS,
    SELECTOR_MAX_IDS,
    SYNC_MAX_IDS,
)
from integration.cli import main
from integration.cli.links import link as link_command
from tests.conftest import ADMIN_TOKEN, service_env
from tests.test_admin_api import count, failed_event
from tests.test_console import csrf_of, sign_in

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def doors(client, services):
    """The test client signed in to the console (the admin API takes the bearer token beside it), and a
    runner for the commands against the same store."""
    assert sign_in(client).status_code == 302

    def command(*args: str):
        return CliRunner().invoke(main, list(args), env=service_env(services.config.database_url))
    return client, command


def notice(client, response) -> str:
    """The page a console form redirected to, with its message."""
    assert response.status_code == 302, response.status_code
    return client.get(response.headers["Location"]).get_data(as_text=True)


# -- link: both account IDs at most ACCOUNT_ID_MAX --------------------------------------------------------

@pytest.mark.parametrize("field,option", [("zuora_account_id", "--zuora-account"),
                                          ("billing_account_id", "--billing-account")])
def test_link_refuses_an_account_id_over_the_limit_at_every_door(doors, services, field, option):
    client, command = doors
    body = {"zuora_account_id": "Z1", "billing_account_id": "B1", field: "x" * (ACCOUNT_ID_MAX + 1)}
    admin = client.post("/admin/links", headers=ADMIN, json=body)
    assert admin.status_code == 400 and list(admin.get_json()["detail"]) == [field]
    page = notice(client, client.post("/console/links", data={**body, "csrf_token": csrf_of(client, "/console/")}))
    assert f"Not linked: give both account IDs (1–{ACCOUNT_ID_MAX} printable characters, no spaces): {field}" in page
    args = {"--zuora-account": "Z1", "--billing-account": "B1", option: "x" * (ACCOUNT_ID_MAX + 1)}
    result = command("link", *[part for pair in args.items() for part in pair], "--wait", "0")
    assert result.exit_code == 2 and f"not an account ID (1–{ACCOUNT_ID_MAX} printable characters" in result.output
    assert count(services) == 0  # nothing queued by any door


def test_link_takes_account_ids_at_the_limit_at_every_door(doors, services):
    client, command = doors
    zuora, billing = "Z" * ACCOUNT_ID_MAX, "B" * ACCOUNT_ID_MAX
    body = {"zuora_account_id": zuora, "billing_account_id": billing}
    assert client.post("/admin/links", headers=ADMIN, json=body).status_code == 202
    assert "Link queued as evt_" in notice(client, client.post(
        "/console/links", data={**body, "csrf_token": csrf_of(client, "/console/")}))
    result = command("link", "--zuora-account", zuora, "--billing-account", billing, "--wait", "0")
    assert result.exit_code == 3, result.output  # queued, no worker here: the command's own exit code
    assert count(services, "SELECT COUNT(*) FROM events WHERE status = 'pending'") == 3


def test_the_command_waits_for_the_link_by_the_one_limit():
    wait = next(p for p in link_command.params if p.name == "wait")
    assert wait.default == LINK_WAIT_SECONDS and wait.type.max == LINK_WAIT_MAX


# -- retry and delete: at most SELECTOR_MAX_IDS event IDs, each at most EVENT_ID_MAX ----------------------

@pytest.mark.parametrize("over", ["too many IDs", "an ID too long"])
@pytest.mark.parametrize("action", ["retry", "delete"])
def test_retry_and_delete_refuse_a_selection_over_the_limits_at_every_door(doors, services, over, action):
    client, command = doors
    event_id = failed_event(services, "A1")
    ids = [event_id] * (SELECTOR_MAX_IDS + 1) if over == "too many IDs" else [event_id, "e" * (EVENT_ID_MAX + 1)]
    if action == "retry":
        admin = client.post("/admin/failures/retry", headers=ADMIN, json={"ids": ids})
    else:
        admin = client.delete("/admin/failures", headers=ADMIN, json={"ids": ids})
    assert admin.status_code == 400 and list(admin.get_json()["detail"]) == ["ids"]
    page = notice(client, client.post("/console/failures", data={
        "action": action, "ids": ids, "csrf_token": csrf_of(client, "/console/failures")}))
    assert "Nothing done:" in page
    result = command("failures", action, *[part for i in ids for part in ("--id", i)])
    assert result.exit_code == 2, result.output
    assert services.inbox.get(event_id).status == "failed"  # nothing retried or deleted by any door


def test_retry_takes_a_selection_at_the_limits_at_every_door(doors, services):
    client, command = doors
    ids = [failed_event(services, f"A{i}") for i in range(3)]
    # Unknown IDs up to the count, one as long as an ID may be (a thousand that long are over the 64 KiB body cap).
    at_limit = [f"evt_{i:032x}" for i in range(SELECTOR_MAX_IDS - 2)] + ["e" * EVENT_ID_MAX]
    response = client.post("/admin/failures/retry", headers=ADMIN, json={"ids": [ids[0], *at_limit]})
    assert response.status_code == 200 and response.get_json()["retried"] == 1
    page = notice(client, client.post("/console/failures", data={
        "action": "retry", "ids": [ids[1], *at_limit], "csrf_token": csrf_of(client, "/console/failures")}))
    assert "Retried 1 failure(s)" in page
    result = command("failures", "retry", *[part for i in [ids[2], *at_limit] for part in ("--id", i)])
    assert result.exit_code == 1 and result.output.startswith("retried 1 failure(s); not found: ")  # the unknown IDs
    assert {services.inbox.get(i).status for i in ids} == {"pending"}


# -- look-ups: an ID at most ID_MAX ------------------------------------------------------------------------

def test_a_mapping_look_up_over_the_limit_is_refused_at_every_door(doors):
    client, command = doors
    too_long = "x" * (ID_MAX + 1)
    admin = client.get(f"/admin/mappings?zuora_id={too_long}", headers=ADMIN)
    assert admin.status_code == 400 and list(admin.get_json()["detail"]) == ["zuora_id"]
    console = client.get(f"/console/mappings?q={too_long}")
    assert console.status_code == 400
    assert f"The search is longer than {ID_MAX} characters; nothing was looked up." in console.get_data(as_text=True)
    result = command("mappings", "list", "--zuora-id", too_long)
    assert result.exit_code == 2 and f"not an ID (1–{ID_MAX} printable characters" in result.output
    at_limit = "x" * ID_MAX
    assert client.get(f"/admin/mappings?zuora_id={at_limit}", headers=ADMIN).get_json()["data"] == []
    assert client.get(f"/console/mappings?q={at_limit}").status_code == 200
    assert command("mappings", "list", "--zuora-id", at_limit, "--json").exit_code == 0


def test_an_event_id_over_the_limit_names_no_event_at_every_door(doors):
    client, command = doors
    too_long = "e" * (EVENT_ID_MAX + 1)
    assert client.get(f"/admin/events/{too_long}", headers=ADMIN).status_code == 404
    assert client.get(f"/console/events/{too_long}").status_code == 404
    result = command("events", "show", too_long)
    assert result.exit_code == 1 and f"no event {too_long}" in result.output


# -- sync now: at most SYNC_MAX_IDS accounts, each at most ACCOUNT_ID_MAX (no command: web doors only) --------

@pytest.mark.parametrize("ids", [[f"Z{i}" for i in range(SYNC_MAX_IDS + 1)], ["Z" * (ACCOUNT_ID_MAX + 1)]],
                         ids=["too many", "too long"])
def test_sync_refuses_the_same_input_at_both_web_doors(doors, services, ids):
    client, _ = doors
    admin = client.post("/admin/sync", headers=ADMIN, json={"zuora_account_ids": ids})
    assert admin.status_code == 400
    page = notice(client, client.post("/console/sync", data={"zuora_account_ids": " ".join(ids),
                                                             "csrf_token": csrf_of(client, "/console/sync")}))
    assert "Nothing queued" in page
    assert count(services) == 0
