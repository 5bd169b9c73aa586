"""The console's forms (POST): retry or delete failures, link two accounts, save or remove a meter,
sync accounts now. Every one is CSRF-checked (integration.web.console.guard) and ends in a redirect
with a message saying what happened (post/redirect/get: a reload never repeats an action). None waits
on the store: a link is answered with its queued event's page, as ``POST /admin/links`` answers 202.
Input over a limit of integration.actions.limits is refused whole, as the admin API and the commands
refuse it, never cut to fit."""
from __future__ import annotations

from flask import current_app, flash, redirect, request, url_for
from marshmallow import ValidationError

from integration.actions import failures, links
from integration.actions.limits import ACCOUNT_ID_MAX, SELECTOR_MAX_IDS
from integration.actions.meters import remove_meter
from integration.actions.sync import queue_syncs
from integration.domain.identifiers import printable_problem
from integration.store import meters
from integration.web.console import bp
from integration.web.schemas import EVENT_ID, SyncRequestSchema
from integration.web.schemas_extra import LinkRequestSchema


def _services():
    return current_app.extensions["integration"]


def _back(endpoint: str, **args):
    """Back to the page the form came from, keeping its filters (only our own known ones)."""
    kept = {k: v for k, v in args.items() if v}
    return redirect(url_for(endpoint, **kept))


def _selected_ids(values: list[str]) -> tuple[list[str], str | None]:
    """The selected event IDs, or why none is acted on: more than SELECTOR_MAX_IDS, or a value that is
    no event ID (only a forged form sends one; it is not echoed back)."""
    if len(values) > SELECTOR_MAX_IDS:
        return [], f"Nothing done: at most {SELECTOR_MAX_IDS:,} failures at once."
    try:
        for value in values:
            for rule in EVENT_ID:
                rule(value)
    except ValidationError:
        return [], "Nothing done: a selected value is not an event ID."
    return list(dict.fromkeys(values)), None


@bp.post("/failures")
def failures_action():
    action = request.form.get("action")
    filters = {"object_type": request.form.get("object_type"), "code": request.form.get("code")}
    ids, refused = _selected_ids(request.form.getlist("shown" if action == "retry_shown" else "ids"))
    if action not in ("retry", "delete", "retry_shown"):
        flash("Choose Retry selected, Delete selected or Retry all shown.", "error")
    elif refused:
        flash(refused, "error")
    elif not ids:
        flash("Nothing selected: tick the failures to act on first.", "error")
    elif action == "delete":
        deleted = failures.delete(_services().db, failures.Selector(ids=tuple(ids)), via="console").count
        flash(f"Deleted {deleted} failure(s). They are kept, marked deleted, for audit.", "ok")
    else:
        retried = failures.retry(_services().db, failures.Selector(ids=tuple(ids)), via="console").count
        flash(f"Retried {retried} failure(s): they are back in the queue.", "ok")
    return _back("console.failures_page", **filters)


@bp.post("/links")
def link_action():
    try:
        data = LinkRequestSchema().load({"zuora_account_id": request.form.get("zuora_account_id", "").strip(),
                                         "billing_account_id": request.form.get("billing_account_id", "").strip()})
    except ValidationError as exc:
        fields = ", ".join(sorted(exc.messages))
        flash(f"Not linked: give both account IDs (1–{ACCOUNT_ID_MAX} printable characters, no spaces): {fields}.",
              "error")
        return _back("console.mappings_page")
    result = links.request(_services().inbox, data["zuora_account_id"], data["billing_account_id"], via="console")
    if result.status == "refused":
        flash(f"Not linked: {result.message}", "error")
        return _back("console.mappings_page")
    flash(f"Link queued as {result.event_id}: a worker writes it on both sides and records the mapping."
          " This page shows how it ended (reload it): done is linked; failed is refused, with the reason.", "ok")
    return redirect(url_for("console.event_page", event_id=result.event_id))


@bp.post("/meters")
def meter_save():
    meter_id = request.form.get("meter_id", "").strip()
    values = {name: request.form.get(name, "").strip()
              for name in ("zuora_subscription_number", "zuora_charge_number", "uom", "mode")}
    try:
        _, created = meters.put_meter(_services().db, meter_id, **values)
    except ValueError as exc:
        flash(f"Meter not saved: {exc}.", "error")
    else:
        flash(f"Meter {meter_id} {'added' if created else 'saved'}.", "ok")
    return _back("console.meters_page")


@bp.post("/meters/delete")
def meter_delete():
    meter_id = request.form.get("meter_id", "")
    if (problem := printable_problem(meter_id)) is not None:  # a NUL would fail the query on PostgreSQL
        flash(f"Meter not removed: the meter ID {problem}.", "error")
    elif remove_meter(_services().db, meter_id, via="console"):
        flash(f"Meter {meter_id} removed: its usage is invoiced as ordinary lines from now on.", "ok")
    else:
        flash("No settings for that meter.", "error")
    return _back("console.meters_page")


@bp.post("/sync")
def sync_action():
    def ids(name: str) -> list[str]:
        return [part for part in request.form.get(name, "").replace(",", " ").split() if part]

    try:
        data = SyncRequestSchema().load({"zuora_account_ids": ids("zuora_account_ids"),
                                         "billing_account_ids": ids("billing_account_ids")})
    except ValidationError as exc:
        problem = exc.messages.get("_schema", exc.messages) if isinstance(exc.messages, dict) else exc.messages
        flash(f"Nothing queued: {_words(problem)}", "error")
        return _back("console.sync_page")
    results = queue_syncs(_services().inbox, data, via="console")
    queued = sum(r["status"] == "queued" for r in results)
    flash(f"Queued {queued} sync(s); {len(results) - queued} already in progress.", "ok")
    return _back("console.sync_page")


def _words(problem) -> str:
    """A marshmallow message structure as one line of text."""
    if isinstance(problem, dict):
        return "; ".join(f"{k}: {_words(v)}" for k, v in problem.items())
    if isinstance(problem, list):
        return " ".join(_words(p) for p in problem)
    return str(problem)
