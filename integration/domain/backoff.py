"""The one backoff rule, shared by the HTTP clients (waits between calls) and the inbox (waits
between attempts of an event).

Full jitter (AWS, "Exponential Backoff and Jitter"): the wait after the n-th consecutive failure is
uniform(0, min(cap, base·2ⁿ)), which spreads the retries of many workers that failed together. When
the remote named the wait (``Retry-After``, ``RateLimit-Reset``), that is the wait, exactly: sooner
would spend a call on a certain refusal (Zuora counts those against the limit), and jitter on top
would wait longer than asked — the remote already staggers its clients by what it tells each one.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base_seconds: float = 5.0
    cap_seconds: float = 3600.0

    def delay(self, failures: int, rng: random.Random, hint: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (0-based): ``hint`` when given."""
        if hint is not None:
            return hint
        return rng.uniform(0, min(self.cap_seconds, self.base_seconds * 2 ** max(failures, 0)))
