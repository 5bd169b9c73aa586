"""What a flow hands back to the worker when it has done its remote work."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Write = Callable[[Any], None]
"""A store write to run in the transaction that marks the event done (it takes that transaction)."""


@dataclass
class Outcome:
    """What a finished flow wants recorded atomically with the event's completion: its ``writes``
    (mapping rows, follow-up events), a one-line ``summary`` for the log, and ``warnings``: what an
    operator should know although the event succeeded (the platform rounded its subtotal, usage a void
    left in Zuora…), kept in the event's history as the done attempt's message and logged at WARNING."""

    writes: list[Write] = field(default_factory=list)
    summary: str = ""
    warnings: list[str] = field(default_factory=list)
