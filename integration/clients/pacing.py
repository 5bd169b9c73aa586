"""When to send the next call: the remote's rate-limit headers read, and a pacer that waits for them.

Zuora counts refused calls against its limit, so the cheapest 429 is the one never provoked:
``Pacer`` holds the next call until the window the headers describe reopens, and ``wait_hint``
says how long a refused call asked us to wait (CONTRACT §5). Header values come from a remote and
are hostile until read: unreadable, infinite or absurd values are ignored or clamped.
"""
from __future__ import annotations

import email.utils
import math
import threading
import time
from collections.abc import Callable, Mapping

from integration.domain.errors import TransientError

MAX_HINT_SECONDS = 86_400.0
"""Longest wait we accept from a remote's header; a hostile or broken value can't park an event for years."""


def parse_number(value: str | None) -> float | None:
    """The first number in a header value, or None when absent or unreadable.

    ``RateLimit-Remaining`` may be a plain number or a list (``"49999, 2249999;w=3600"``); the
    smallest listed value is the one that runs out first, so that is the one returned.
    """
    if value is None:
        return None
    numbers = []
    for item in str(value).split(","):
        head = item.split(";", 1)[0].strip()
        try:
            number = float(head)
        except ValueError:
            continue
        if math.isfinite(number):
            numbers.append(number)
    return min(numbers) if numbers else None


def parse_reset(value: str | None, *, wall_clock: Callable[[], float] = time.time) -> float | None:
    """Seconds until ``RateLimit-Reset``; an epoch timestamp (some APIs send one) is converted."""
    number = parse_number(value)
    if number is None:
        return None
    if number > 1_000_000_000:
        number = number - wall_clock()
    return _clamp(number)


def parse_retry_after(value: str | None, *, wall_clock: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``Retry-After`` (RFC 9110: delay-seconds or an HTTP-date)."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return _clamp(float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return _clamp(when.timestamp() - wall_clock())


def _clamp(seconds: float) -> float | None:
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_HINT_SECONDS)


def wait_hint(headers: Mapping[str, str]) -> float | None:
    """The wait a response asked for, by the IETF rate-limit headers draft's precedence (CONTRACT §5).

    ``Retry-After``, when present and readable, *is* the wait: the draft says it "MUST take
    precedence" over the RateLimit fields, and Zuora's concurrency refusals (category 70) name it.
    Without it, ``RateLimit-Reset`` is the wait only when ``RateLimit-Remaining`` says the budget is
    spent (Zuora's own 429 sample carries ``ratelimit-*`` and no ``Retry-After``); a reset with
    budget left is when the window rolls over, not a request to wait.
    """
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    remaining = parse_number(headers.get("RateLimit-Remaining"))
    if remaining is not None and remaining <= 0:
        return parse_reset(headers.get("RateLimit-Reset"))
    return None


# --------------------------------------------------------------------------- pacing and backoff

class Pacer:
    """Holds the next call back until the remote's rate or concurrency window reopens.

    Zuora counts refused calls against the limit too, so spending one call to learn "429" makes
    things worse; waiting for the window to reopen once ``RateLimit-Remaining`` hits the threshold
    does not. ``RateLimit-Reset`` comes in whole seconds, rounded up, so one reading may put the
    window's end up to a second late (a 1 s window then idles half the time). Every response of a
    window gives another upper bound (its arrival time + its reset), and the earliest of them is
    the tightest: the pacer resumes there — never before the window really ends, barely after.
    ``Concurrency-Limit-Remaining`` is refreshed every second, so 0 there means "wait a second".
    A response carrying ``Retry-After`` overrides both, as in ``wait_hint``: the pacer then resumes
    exactly that long after it, however far off ``RateLimit-Reset`` is (IETF draft: Retry-After
    "MUST take precedence"), so the pacer never holds a call longer than the server asked.
    A wait longer than ``max_wait`` is not slept: it becomes a ``TransientError`` so the inbox
    reschedules the event rather than parking a worker thread.
    """

    CONCURRENCY_WINDOW = 1.0

    def __init__(self, *, clock: Callable[[], float], sleep: Callable[[float], None], max_wait: float,
                 threshold: int = 0):
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait
        self._threshold = threshold
        self._lock = threading.Lock()
        self._window_end: float | None = None
        self._last_remaining: float | None = None
        self._rate_resume_at: float | None = None
        self._concurrency_resume_at: float | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the remaining budget from a response's headers."""
        now = self._clock()
        retry_after = parse_retry_after(headers.get("Retry-After"))
        remaining = parse_number(headers.get("RateLimit-Remaining"))
        reset = parse_reset(headers.get("RateLimit-Reset"))
        concurrency = parse_number(headers.get("Concurrency-Limit-Remaining"))
        with self._lock:
            if reset is not None:
                self._track_window(now, now + reset, remaining)
            if remaining is not None:
                self._last_remaining = remaining
            if retry_after is not None:  # the server said how long: that, not the reset, is the wait
                self._rate_resume_at = now + retry_after
                self._concurrency_resume_at = None
                return
            if remaining is not None:
                if remaining <= self._threshold and self._window_end is not None:
                    self._rate_resume_at = max(self._rate_resume_at or 0.0, self._window_end)
                elif remaining > self._threshold:
                    self._rate_resume_at = None
            if concurrency is not None:
                if concurrency <= 0:
                    self._concurrency_resume_at = now + self.CONCURRENCY_WINDOW
                else:
                    self._concurrency_resume_at = None

    def _track_window(self, now: float, end: float, remaining: float | None) -> None:
        current = self._window_end
        new_window = (current is None or now >= current
                      or (remaining is not None and self._last_remaining is not None
                          and remaining > self._last_remaining))
        self._window_end = end if new_window or current is None else min(current, end)

    def wait_turn(self) -> None:
        """Sleep until the window reopens, or raise ``TransientError`` when that is too far off."""
        with self._lock:
            targets = [t for t in (self._rate_resume_at, self._concurrency_resume_at) if t is not None]
        if not targets:
            return
        wait = max(targets) - self._clock()
        if wait <= 0:
            return
        if wait > self._max_wait:
            raise TransientError(f"rate limit exhausted; the window reopens in {wait:.0f} s", retry_after=wait)
        self._sleep(wait)
