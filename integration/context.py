"""Per-event context shared by the worker, the clients and the logs.

The worker sets ``current_event_id`` while it runs an event, so each remote call carries it
(``Zuora-Track-Id``) and each log line names it, without threading it through every signature.
"""
from __future__ import annotations

from contextvars import ContextVar

current_event_id: ContextVar[str | None] = ContextVar("current_event_id", default=None)
