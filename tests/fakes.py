"""Test doubles shared by the client tests."""
from __future__ import annotations


class FakeClock:
    """Monotonic time that only moves when the client sleeps (or a test says so); records each sleep."""

    def __init__(self, now: float = 1000.0):
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
