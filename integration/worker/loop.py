"""The worker loop: claim a due event, run its flow, record the outcome.

A flow is a callable ``handler(event) -> Outcome | None``. Whatever it must record with the
event's completion (mapping rows, meter links) it returns as ``Outcome.writes``: callables run in
the same transaction that marks the event done, so a crash can never leave a pushed object
without its mapping *and* a finished event. Errors decide the rest (integration.domain.errors), under the
retry policy of the event's kind (integration.domain.work): a failure it retries (``TransientError``) →
backoff in the same attempt series (RETRIES_EXHAUSTED once attempts run out); ``MissingMapping`` →
failed, waiting for the account; any other ``SyncError`` → failed with its code; anything unexpected →
failed as UNKNOWN, logged in full.

Waking up: within a process, ``Worker.wake()``; across processes (web and worker apart), the store's
``changes_marker()`` moves whenever another connection commits (on SQLite a cheap read of shared
memory), and the loop checks it every ``poll_interval``, so a new event is picked up in about that
time without hammering the events table.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable

from integration import metrics
from integration.context import current_event_id
from integration.domain import work
from integration.domain.errors import (
    RETRIES_EXHAUSTED,
    UNKNOWN,
    MissingMapping,
    SyncError,
)
from integration.flows.outcome import Outcome
from integration.store.inbox import Event, Inbox, LeaseLost
from integration.store.tx import StoreUnavailable
from integration.worker.periodic import new_worker_id

log = logging.getLogger("integration.worker")

Handler = Callable[[Event], "Outcome | None"]


class Worker:
    def __init__(self, inbox: Inbox, handlers: dict[str, Handler], *, worker_id: str | None = None,
                 poll_interval: float = 0.1, idle_interval: float = 5.0,
                 periodic: Iterable[Callable[[], None]] = ()):
        self.inbox = inbox
        self.handlers = dict(handlers)
        self.worker_id = worker_id or new_worker_id()
        self.poll_interval = poll_interval
        self.idle_interval = idle_interval
        self.periodic = list(periodic)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._heartbeat = _Heartbeat(inbox, self.worker_id)

    # -- control ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the event in hand, then leave the loop."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    # -- loop --------------------------------------------------------------------------------------

    def run(self) -> None:
        log.info("worker started", extra={"worker_id": self.worker_id})
        last_periodic = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_periodic >= 1.0:
                self._run_periodic()
                last_periodic = time.monotonic()
            # Read the version *before* looking for work: a commit after this point changes it,
            # so an event recorded while we look is never slept through.
            last_version = self._data_version()
            try:
                worked = self.run_once()
            except StoreUnavailable as exc:
                log.warning("store unavailable, retrying", extra={"error": str(exc)})
                worked = False
            if worked:
                continue
            # Idle: sleep until woken, another process commits, or the next event falls due.
            due_in = self._safe_due_in()
            deadline = time.monotonic() + min(due_in if due_in is not None else self.idle_interval,
                                              self.idle_interval)
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self._wake.wait(min(self.poll_interval, max(deadline - time.monotonic(), 0))):
                    self._wake.clear()
                    break
                if self._data_version() != last_version:
                    break
        log.info("worker stopped", extra={"worker_id": self.worker_id})

    def _safe_due_in(self) -> float | None:
        try:
            return self.inbox.next_due_in()
        except Exception:  # noqa: BLE001 - the store may be briefly locked; poll again soon
            return self.poll_interval

    def _data_version(self) -> int:
        try:
            marker = self.inbox.db.changes_marker()
        except Exception:  # noqa: BLE001
            return -1
        return -1 if marker is None else marker

    def _run_periodic(self) -> None:
        for job in self.periodic:
            try:
                job()
            except Exception:
                log.exception("periodic job failed")

    def run_once(self) -> bool:
        """Claim and process one event; False when nothing was due."""
        events = self.inbox.claim(self.worker_id)
        if not events:
            return False
        self.process(events[0])
        return True

    def drain(self, max_events: int = 10_000) -> int:
        """Process due events until none is left (tests, the demo)."""
        count = 0
        while count < max_events and self.run_once():
            count += 1
        return count

    # -- one event -------------------------------------------------------------------------------

    def process(self, event: Event) -> None:
        token = current_event_id.set(event.id)
        self._heartbeat.hold(event.id)
        started = time.monotonic()
        try:
            self._process(event)
        finally:
            self._heartbeat.release()
            current_event_id.reset(token)
            log.debug("event processed", extra={"event_id": event.id,
                                                 "duration_ms": round((time.monotonic() - started) * 1000, 1)})

    def _process(self, event: Event) -> None:
        labels = {"source": event.source, "type": event.type}
        handler = self.handlers.get(event.type)
        try:
            if handler is None:
                raise SyncError(f"no handler for event type {event.type!r}")
            outcome = handler(event) or Outcome()
            with self.inbox.db.transaction() as tx:
                for write in outcome.writes:
                    write(tx)
                self.inbox.finish(event.id, self.worker_id, tx, warnings=outcome.warnings)
        except LeaseLost:
            log.warning("lease lost; another worker has the event", extra=self._extra(event))
        except SyncError as exc:
            if work.retry_policy(event.type).retries(exc):
                self._guard(self._transient, event, exc, labels)
            elif isinstance(exc, MissingMapping):
                self._guard(self._failed, event, exc.code, exc.message, labels, exc.waiting_for)
            else:
                self._guard(self._failed, event, exc.code, exc.message, labels)
        except StoreUnavailable as exc:
            # Leave the lease to expire: the event runs again, and its flow is idempotent.
            log.error("store unavailable while finishing event", extra={**self._extra(event), "error": str(exc)})
        except Exception as exc:
            log.exception("unexpected error in flow", extra=self._extra(event))
            self._guard(self._failed, event, UNKNOWN, f"{type(exc).__name__}: {exc}", labels)
        else:
            metrics.EVENTS_DONE.labels(**labels).inc()
            log.info("event done", extra={**self._extra(event), "outcome": "done", "summary": outcome.summary})
            for warning in outcome.warnings:
                log.warning("event done with a warning", extra={**self._extra(event), "warning": warning})

    def _transient(self, event: Event, exc: SyncError, labels: dict) -> None:
        if self.inbox.reschedule(event.id, self.worker_id, exc.message, getattr(exc, "retry_after", None)):
            metrics.EVENTS_RETRIED.labels(**labels).inc()
            log.warning("event rescheduled", extra={**self._extra(event), "outcome": "rescheduled",
                                                    "error": exc.message})
        else:
            metrics.EVENTS_FAILED.labels(**labels, code=RETRIES_EXHAUSTED).inc()
            log.error("event failed: attempts exhausted", extra={**self._extra(event), "outcome": "failed",
                                                                  "code": RETRIES_EXHAUSTED, "error": exc.message})

    def _failed(self, event: Event, code: str, message: str, labels: dict, waiting_for: str | None = None) -> None:
        self.inbox.fail(event.id, self.worker_id, code, message, waiting_for)
        metrics.EVENTS_FAILED.labels(**labels, code=code).inc()
        log.error("event failed", extra={**self._extra(event), "outcome": "failed", "code": code,
                                         "error": message})

    def _guard(self, record: Callable[..., None], *args) -> None:
        """Record an outcome; a lost lease or a busy store leaves the event to run again."""
        try:
            record(*args)
        except LeaseLost:
            log.warning("lease lost before the outcome was recorded")
        except StoreUnavailable as exc:
            log.error("store unavailable while recording an outcome", extra={"error": str(exc)})

    @staticmethod
    def _extra(event: Event) -> dict:
        return {"event_id": event.id, "source": event.source, "event_type": event.type,
                "object_id": event.object_id, "attempt": event.attempts}


class _Heartbeat:
    """Extends the lease of the event in hand every third of the lease, while its flow runs.

    One thread per worker, reused from event to event: starting and joining a thread per event cost
    about 2 ms of every event's 10 (bench/README.md, finding 6). The thread ends itself after a few
    idle beats and ``hold`` starts it again, so a worker that stops working leaves no thread behind.
    """

    IDLE_BEATS = 3

    def __init__(self, inbox: Inbox, worker_id: str):
        self.inbox, self.worker_id = inbox, worker_id
        self.interval = max(inbox.lease_seconds / 3, 0.05)
        self._lock = threading.Lock()
        self._event_id: str | None = None
        self._thread: threading.Thread | None = None

    def hold(self, event_id: str) -> None:
        """Keep ``event_id``'s lease alive until ``release``."""
        with self._lock:
            self._event_id = event_id
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat-{self.worker_id}")
                self._thread.start()

    def release(self) -> None:
        with self._lock:
            self._event_id = None

    def _beat(self) -> None:
        idle = 0
        while True:
            time.sleep(self.interval)
            with self._lock:
                event_id = self._event_id
                if event_id is None:
                    idle += 1
                    if idle >= self.IDLE_BEATS:
                        self._thread = None  # under the lock: a hold() now starts a fresh thread
                        return
                    continue
            idle = 0
            try:
                still_ours = self.inbox.heartbeat(event_id, self.worker_id)
            except StoreUnavailable:
                continue
            if not still_ours:  # the lease was lost: beat no more for this event
                with self._lock:
                    if self._event_id == event_id:
                        self._event_id = None
