"""Housekeeping the worker runs besides the flows: forgetting delivery IDs whose replay window passed.

Every webhook delivery ID is remembered for its sender's window (``integration.domain.deliveries``);
without this job the table would grow by one row per delivery forever. The delete is idempotent, so
every worker process runs it (no slot to claim): about every ten minutes, the first time at start.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from integration.services import Services
from integration.worker.periodic import Periodic

log = logging.getLogger("integration.worker")

FORGET_EVERY_SECONDS = 600.0


@dataclass
class ForgetDeliveriesJob:
    """A periodic job for the worker loop: cheap between runs (no store access)."""

    services: Services
    every: float = FORGET_EVERY_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    _last: float | None = field(default=None, init=False, repr=False)
    _done: int = field(default=0, init=False, repr=False)
    _periodic: Periodic[float, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # No claim: the delete is idempotent, so every process runs it.
        self._periodic = Periodic("forget-deliveries", self.monotonic, self._slot, self._forget, log=log)

    def __call__(self) -> None:
        self._periodic()

    def _slot(self, now: float) -> int | None:
        """This process's next run (its number) once ``every`` has passed since the last one; None before."""
        if self._last is not None and now - self._last < self.every:
            return None
        return self._done

    def _forget(self, run: int, now: float) -> None:
        forgotten = self.services.inbox.forget_deliveries()
        self._last, self._done = now, run + 1  # only after it ran: a busy store means "try again next second"
        if forgotten:
            log.info("delivery IDs past their replay window forgotten", extra={"forgotten": forgotten})
