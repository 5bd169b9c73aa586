"""One runner per slot: the mechanism the worker's periodic jobs share.

The worker calls each periodic job about once a second. A ``Periodic`` reads its clock once, asks its
slot function for the current *slot* (None: nothing to do now, e.g. the job is not configured) and,
for a slot this process has not handled yet:

- **claims it** with ``claim`` (an insert whose primary key decides, so one process across all hosts
  wins; ``claim=None`` when ``run`` claims in its own transaction, or when every process may run it);
- **runs it**, inline (``run`` raising leaves the slot unhandled: a busy store means "try again next
  second") or, with ``threaded``, on its own thread once claimed, at most one run in flight per
  process (a slow run never holds up the flows; its exception is logged, and the next slot repeats it);
- marks it handled only then, so calling again within the slot costs no store access.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

T = TypeVar("T")  # what the clock tells: an aware datetime, or a monotonic float
S = TypeVar("S", bound=Hashable)  # a slot


def new_worker_id() -> str:
    """This process's name in claims and leases: host, pid and a short random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def interval_slot(prefix: str, now: datetime, seconds: float) -> str:
    """The key of ``now``'s slot of ``seconds``, counted from the Unix epoch so every process agrees on it."""
    start = int(now.timestamp() // seconds * seconds)
    return f"{prefix}:" + datetime.fromtimestamp(start, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(eq=False)
class Periodic(Generic[T, S]):
    name: str
    clock: Callable[[], T]
    slot: Callable[[T], S | None]
    run: Callable[[S, T], Any]
    claim: Callable[[S, T], bool] | None = None
    threaded: bool = False
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("integration.worker"))
    failed: str = "periodic job failed"  # logged when a threaded run raises
    handled: S | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    def __call__(self) -> None:
        now = self.clock()
        slot = self.slot(now)
        if slot is None or slot == self.handled or self.in_flight():
            return
        won = self.claim is None or self.claim(slot, now)
        if won and not self.threaded:
            self.run(slot, now)
        self.handled = slot  # only after the claim (and an inline run): a busy store means "try again next second"
        if won and self.threaded:
            self._thread = threading.Thread(target=self._run_logged, args=(slot, now), daemon=True,
                                            name=f"{self.name}-{slot}")
            self._thread.start()

    def in_flight(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float) -> None:
        """Until the threaded run in flight (if any) has ended (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run_logged(self, slot: S, now: T) -> None:
        try:
            self.run(slot, now)
        except Exception:
            self.log.exception(self.failed, extra={"slot": slot})
