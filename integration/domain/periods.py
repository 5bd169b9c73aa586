"""A reporting period, ``YYYY-MM``: one calendar month in UTC, as ``[start, end)``.

One parser for the command and the admin route, so both refuse the same input the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

_PERIOD = re.compile(r"([0-9]{4})-([0-9]{2})")  # ASCII digits only: \d matches any script's digits
FIRST_YEAR = 1970  # the billing API filters by epoch milliseconds


@dataclass(frozen=True)
class Period:
    """One calendar month: invoices dated at or after ``start`` and before ``end`` belong to it."""

    year: int
    month: int

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=timezone.utc)

    @property
    def end(self) -> datetime:
        year, month = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        return datetime(year, month, 1, tzinfo=timezone.utc)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def parse_period(text: object) -> Period:
    """``YYYY-MM`` → Period; ValueError with a reason an operator can act on otherwise."""
    match = _PERIOD.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError("must be a month as YYYY-MM, e.g. 2024-07")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise ValueError("the month must be 01 to 12")
    if not FIRST_YEAR <= year <= 9998:
        raise ValueError(f"the year must be {FIRST_YEAR} to 9998")
    return Period(year, month)
