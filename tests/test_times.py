"""Remote times read one way for every API: aware UTC, a naive time UTC only where the API says so."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from integration.domain.times import iso_moment, parse_moment

UTC = timezone.utc


@pytest.mark.parametrize("value, naive_is_utc, expected", [
    ("2026-01-02T03:04:05Z", False, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2026-01-02T05:04:05+02:00", False, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2026-01-02T03:04:05", True, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),   # Zuora's: UTC
    ("2026-01-02T03:04:05", False, None),                                      # no zone, no guess
    ("yesterday", True, None), ("", True, None), (None, True, None), (20260102, True, None),
])
def test_a_remote_time_is_aware_utc_or_none(value, naive_is_utc, expected):
    moment = parse_moment(value, naive_is_utc=naive_is_utc)
    assert moment == expected
    assert moment is None or moment.tzinfo is UTC


def test_a_time_is_shown_with_a_z():
    assert iso_moment(datetime(2026, 1, 2, 3, 4, 5, 600, tzinfo=UTC)) == "2026-01-02T03:04:05.000600Z"
    assert iso_moment(None) is None
