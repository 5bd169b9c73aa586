"""Reconciliation (CONTRACT §9): the net under a webhook or callout that never came.

Every ``INTEGRATION_RECONCILE_MINUTES`` (a *slot* counted from the Unix epoch, so every process agrees
on it) one process across all hosts claims the slot in the store and runs a pass; the others skip it.
A pass reads, from its stored watermark less ``OVERLAP`` (clock skew between us and the vendors):

- Zuora accounts with ``updatedDate`` after it (Object Query);
- billing accounts — Togai's ``Account`` carries no timestamps and ``GET /accounts`` no time filter, so
  every account is listed and checked against the store (cheap: a list call per 50, no per-object GET);
- billing invoices that are finalized and were updated after it (``GET /invoices``; its time filter is on
  the invoice *date*, which says nothing about when it was finalized, so the update time is checked here);
  of those, the ``VOID`` ones are voids (CONTRACT §12): a mapped invoice that became void since the
  watermark and whose Zuora twin is not undone yet gets an ``invoice.voided`` (the void flow then undoes it);
  a void one is never queued to be pushed.

Each object with no mapping and no event is queued (``integration.store.reconcile.queue``). Lists are
streamed, so a pass holds one page at a time. The watermark moves to the pass's *start* only when the
pass completes: a pass that dies midway leaves it, and the next pass reads the same window again and
skips what the first one queued. Already-synced objects cost list calls only.

The first pass (CONTRACT §12, onboarding safety) queues nothing: it lists *every* object of the three
kinds, whatever its timestamps, and records them as the baseline — what existed before the service, which
is ``integration backfill``'s to onboard, with its twin matching and its dry run. Reconciliation must not
create a Zuora account for each existing Togai account just because Togai gives accounts no timestamp;
nor a second twin for a Zuora account whose twin only ``backfill --match-email`` would find. Later passes
queue only what is neither in the baseline nor mapped, so an object created after the service started is
synced as before, and webhooks are untouched. The worker runs its first pass as it starts.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from integration.billing.model import BillingAccount, BillingInvoice
from integration.domain.times import utcnow
from integration.services import Services
from integration.store import reconcile as state
from integration.worker.periodic import Periodic, interval_slot, new_worker_id

log = logging.getLogger("integration.reconcile")

OVERLAP = timedelta(minutes=5)
BASELINE_BATCH = 500  # IDs recorded per transaction while the first pass takes the baseline


@dataclass
class PassResult:
    """What one pass read and queued, per kind (``zuora_account``, ``billing_account``, ``billing_invoice``,
    ``billing_invoice_void``); a ``baseline`` pass (the first) queues nothing and records what it read instead."""

    since: datetime
    started_at: datetime
    baseline: bool = False
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(state.KINDS, 0))
    queued: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in state.KINDS})

    def summary(self) -> str:
        if self.baseline:
            parts = [f"{self.found[kind]} {kind.replace('_', ' ')}s" for kind in state.BASELINE_KINDS]
            return ("first pass: recorded " + ", ".join(parts) + " as existing before the service; nothing "
                    "queued (onboard them with integration backfill; later passes sync what is new)")
        parts = [f"{kind.replace('_', ' ')}s: {self.found[kind]} read, {len(self.queued[kind])} queued"
                 for kind in state.KINDS]
        return f"reconciled since {self.since.isoformat()}: " + "; ".join(parts)


def changed_since(row: BillingAccount | BillingInvoice, since: datetime) -> bool:
    """Whether the object changed after ``since``; one without timestamps counts as changed (read it).
    Reading it is all that means: whether it is *new* is the baseline's and the mapping table's to say,
    never a missing timestamp's (a Togai account has none)."""
    moments = [m for m in (row.updated_at, row.created_at) if m is not None]
    return not moments or max(moments) > since


def object_id(row: Any) -> str:
    """The ID of a listed object: a billing model object's, or a Zuora row's ``id``."""
    return row.id if isinstance(row, (BillingAccount, BillingInvoice)) else str(row["id"])


def candidates(services: Services, since: datetime | None) -> Iterator[tuple[str, Any]]:
    """``(kind, row)`` for every object a pass since ``since`` must look at, streamed; with ``since``
    None, every object there is (the first pass's baseline: no timestamp filter at all)."""
    for zuora_account in services.zuora.list_accounts(updated_since=since):
        yield "zuora_account", {"id": zuora_account.id}  # a pass reads no more of an object than its ID
    for account in services.billing.list_accounts():
        if since is None or changed_since(account, since):
            yield "billing_account", account
    for invoice in services.billing.list_invoices():
        if since is not None and not changed_since(invoice, since):
            continue
        if invoice.is_void:  # the invoice's one rule (integration.billing's adapter)
            yield "billing_invoice_void", invoice
        elif invoice.is_finalized:
            yield "billing_invoice", invoice


def run_pass(services: Services, *, since: datetime | None = None, clock: Callable[[], datetime] = utcnow,
             source: Callable[[Services, datetime | None], Iterable[tuple[str, Any]]] = candidates,
             advance: bool = True) -> PassResult:
    """One pass: read what changed since ``since`` (default: the stored watermark less ``OVERLAP``), queue
    what the service has not seen, then, if ``advance``, move the watermark to this pass's start.

    Until a baseline has been taken, the pass takes it instead (``since`` aside: it reads everything) and
    queues nothing; the baseline is marked complete only after the last row, whether or not ``advance``."""
    started_at = clock()
    since = since if since is not None else state.watermark(services.db) - OVERLAP
    taking_baseline = state.baseline_taken(services.db) is None
    result = PassResult(since=since, started_at=started_at, baseline=taking_baseline)
    if taking_baseline:
        _take_baseline(services, source(services, None), result, clock)
    else:
        for kind, row in source(services, since):
            result.found[kind] += 1
            event_id = state.queue(services.inbox, kind, object_id(row))
            if event_id is not None:
                result.queued[kind].append(object_id(row))
    if advance:
        state.advance(services.db, started_at, clock())
    log.info("reconciliation pass completed", extra={
        "since": since.isoformat(), "found": sum(result.found.values()), "baseline": taking_baseline,
        "queued": sum(len(v) for v in result.queued.values())})
    return result


def _take_baseline(services: Services, rows: Iterable[tuple[str, Any]], result: PassResult,
                   clock: Callable[[], datetime]) -> None:
    """Record every listed object as existing before the service, a batch per transaction; then mark the
    baseline taken as of the pass's start. A pass that dies before the end leaves it untaken: the next
    pass lists everything again (what this one recorded stays, once)."""
    pending: dict[str, list[str]] = {kind: [] for kind in state.BASELINE_KINDS}
    for kind, row in rows:
        if kind not in pending:  # a void: it needs a mapping, which nothing before the service has
            continue
        result.found[kind] += 1
        pending[kind].append(object_id(row))
        if len(pending[kind]) >= BASELINE_BATCH:
            state.record_baseline(services.db, kind, pending[kind], clock())
            pending[kind] = []
    for kind, ids in pending.items():
        state.record_baseline(services.db, kind, ids, clock())
    state.finish_baseline(services.db, result.started_at, clock())
    log.info("reconciliation baseline taken: what exists now is integration backfill's to onboard",
             extra={"recorded": dict(result.found)})


def slot_of(now: datetime, interval: timedelta) -> str:
    return interval_slot("reconcile", now, interval.total_seconds())


@dataclass
class ReconcileJob:
    """The worker's periodic job: cheap within a slot (no store access); the pass runs on its own
    thread so a large tenant never holds up the flows, and at most one pass per process at a time."""

    services: Services
    clock: Callable[[], datetime] = utcnow
    interval: timedelta | None = None  # default: INTEGRATION_RECONCILE_MINUTES
    worker_id: str = field(default_factory=new_worker_id)
    passes: list[PassResult] = field(default_factory=list, init=False, repr=False)
    _periodic: Periodic[datetime, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._periodic = Periodic(
            "reconcile", self.clock, self._slot, lambda slot, now: self._pass(),
            claim=lambda slot, now: state.claim(self.services.db, slot, self.worker_id, now),
            threaded=True, log=log, failed="reconciliation pass failed; the next slot repeats it")

    def _interval(self) -> timedelta | None:
        if self.interval is not None:
            return self.interval
        minutes = self.services.config.reconcile_minutes
        return timedelta(minutes=minutes) if minutes > 0 else None

    def __call__(self) -> None:
        self._periodic()

    def _slot(self, now: datetime) -> str | None:
        interval = self._interval()
        return None if interval is None else slot_of(now, interval)

    def _pass(self) -> None:
        self.passes.append(run_pass(self.services, clock=self.clock))

    def wait(self, timeout: float = 60.0) -> None:
        """Until the pass in flight (if any) has ended (tests, shutdown)."""
        self._periodic.wait(timeout)
