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

log = logging.getLogger("integration.worker")

FORGET_EVERY_SECONDS = 600.0


@dataclass
class ForgetDeliveriesJob:
    """A periodic job for the worker loop: cheap between runs (no store access)."""

    services: Services
    every: float = FORGET_EVERY_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    _last: float | None = field(default=None, init=False, repr=False)

    def __call__(self) -> None:
        now = self.monotonic()
        if self._last is not None and now - self._last < self.every:
            return
        forgotten = self.services.inbox.forget_deliveries()
        self._last = now  # only after it ran: a busy store means "try again next second"
        if forgotten:
            log.info("delivery IDs past their replay window forgotten", extra={"forgotten": forgotten})
