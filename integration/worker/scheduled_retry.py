"""The scheduled retry of the failure list (CONTRACT §5): twice a day by default.

The worker calls the job about once a second. The job works out the latest *slot* of the cron
expression (``INTEGRATION_RETRY_CRON``, default ``30 11,23 * * *`` = 11:30 and 23:30 UTC) at or
before now, and runs it once:

- **One runner per slot, however many workers.** The run starts by inserting the slot's key into
  ``scheduled_runs`` (primary key); the worker whose insert lands runs the retry *in the same
  transaction* and records how many events it retried there. Every other worker's insert meets
  the existing row and does nothing. A crash mid-run rolls back the insert with the retry, so the
  slot is still free for another worker.
- **No late runs.** A slot is run only within ``max_lateness`` (default one hour) of its time. If
  no worker was up then (a deploy, an outage), the slot is skipped, not run hours later at a time
  the operator did not choose; the next slot picks the failures up (they stay on the list for 7
  days). Within the hour, a worker that starts late still runs the slot.
- **What is retried:** failures whose last failure is within the last ``window`` (7 days) before
  the slot, at most ``cap`` (50,000) per run, oldest first, ``MISSING_MAPPING`` excluded: those
  wait for their account to be linked, which releases them at once.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from croniter import croniter

from integration import metrics
from integration.domain.times import utcnow
from integration.services import Services
from integration.store import failures, scheduler
from integration.worker.periodic import Periodic, new_worker_id

log = logging.getLogger("integration.scheduler")

DEFAULT_CAP = 50_000
DEFAULT_WINDOW = timedelta(days=7)
DEFAULT_MAX_LATENESS = timedelta(hours=1)


def latest_slot(cron: str, now: datetime) -> datetime:
    """The most recent time at or before ``now`` (to the minute) that ``cron`` names, in UTC."""
    now = now.astimezone(timezone.utc)
    next_minute = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # get_prev is strictly before its start, so starting at the next whole minute includes this one.
    slot = croniter(cron, next_minute).get_prev(datetime)
    return slot.astimezone(timezone.utc).replace(fold=0)


def slot_key(slot: datetime) -> str:
    return "retry:" + slot.strftime("%Y-%m-%dT%H:%MZ")


@dataclass(frozen=True)
class SlotRun:
    """A slot this job ran (it won the insert), and how many failures it put back in the queue."""

    slot: datetime
    retried: int


@dataclass
class ScheduledRetry:
    """The periodic job; ``__call__`` is cheap when no new slot has come (no store access)."""

    services: Services
    clock: Callable[[], datetime] = utcnow
    cap: int = DEFAULT_CAP
    window: timedelta = DEFAULT_WINDOW
    max_lateness: timedelta = DEFAULT_MAX_LATENESS
    worker_id: str = field(default_factory=new_worker_id)
    runs: list[SlotRun] = field(default_factory=list, init=False, repr=False)
    _periodic: Periodic[datetime, datetime] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # No claim before the run: run_slot claims the slot in the transaction that retries.
        self._periodic = Periodic("retry", self.clock, lambda now: latest_slot(self.services.config.retry_cron, now),
                                  self._run, log=log)

    def __call__(self) -> None:
        self._periodic()

    def _run(self, slot: datetime, now: datetime) -> None:
        if now - slot > self.max_lateness:
            if self._periodic.handled is not None:
                log.warning("scheduled retry slot missed; not running it late",
                            extra={"slot": slot.isoformat(), "late_seconds": round((now - slot).total_seconds())})
            return  # handled all the same: nothing to do for this slot in this process, ever
        retried = self.run_slot(slot, now)  # raising leaves the slot unhandled: a locked store means "try again"
        if retried is not None:
            self.runs.append(SlotRun(slot, retried))

    def run_slot(self, slot: datetime, now: datetime) -> int | None:
        """Claim the slot and retry in one transaction; None when another worker had claimed it."""
        key = slot_key(slot)
        with self.services.db.transaction() as tx:
            if not scheduler.claim_slot(tx, key, self.worker_id, now):
                return None
            retried = failures.retry_recent(tx, now=now, since=slot - self.window, cap=self.cap)
            scheduler.record_result(tx, key, retried)
        metrics.FAILURES_RETRIED.labels(trigger="scheduled").inc(retried)
        log.info("scheduled retry ran", extra={"slot": key, "retried": retried, "worker_id": self.worker_id})
        return retried


def scheduled_retry_job(services: Services, *, clock: Callable[[], datetime] = utcnow, cap: int = DEFAULT_CAP,
                        window: timedelta = DEFAULT_WINDOW, max_lateness: timedelta = DEFAULT_MAX_LATENESS,
                        worker_id: str | None = None) -> ScheduledRetry:
    """A periodic job for the worker loop (see the module docstring for what it guarantees)."""
    job = ScheduledRetry(services, clock=clock, cap=cap, window=window, max_lateness=max_lateness)
    if worker_id:
        job.worker_id = worker_id
    return job
