"""The store's one time type (integration/store/types.py): what goes in is an aware datetime, what comes
out is the same instant as an aware UTC datetime, on both engines; SQLite keeps the fixed-width text
whose string order is time order, PostgreSQL a timestamptz; a naive time or an undeclared time
parameter is refused rather than stored in some other form."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError

from integration.store.db import Database
from integration.store.types import TIME_PARAMS, text
from tests.engines import store_sql

pytestmark = pytest.mark.both_engines

BERLIN = timezone(timedelta(hours=2))
INSERT = text("INSERT INTO scheduled_runs (slot, worker_id, started_at) VALUES (:slot, 'w', :started_at)")
READ = text("SELECT slot, started_at FROM scheduled_runs WHERE started_at >= :since ORDER BY started_at")


@pytest.fixture
def db(database_url):
    store = Database(database_url)
    store.migrate()
    yield store
    store.close()


def test_a_time_goes_in_aware_and_comes_out_aware_utc(db):
    moments = [datetime(2026, 3, 1, 14, 30, 5, 123456, tzinfo=BERLIN), datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)]
    with db.transaction() as tx:
        for n, moment in enumerate(moments):
            tx.run(INSERT, slot=f"s{n}", started_at=moment)
    with db.read() as tx:
        rows = tx.rows(READ, since=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert [r["slot"] for r in rows] == ["s1", "s0"]  # ordered by time in SQL, on either engine
    assert rows[1]["started_at"] == moments[0] and rows[1]["started_at"].tzinfo == timezone.utc
    assert rows[0]["started_at"] == datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    stored = store_sql(db).execute("SELECT started_at FROM scheduled_runs WHERE slot = 's0'").fetchone()[0]
    assert stored == "2026-03-01T12:30:05.123456Z"  # SQLite's text; PostgreSQL's timestamptz read the same way


def test_a_naive_time_is_refused(db):
    with pytest.raises(StatementError, match="naive"), db.transaction() as tx:  # a bug: SQLAlchemy says where
        tx.run(INSERT, slot="s", started_at=datetime(2026, 3, 1, 12, 0))  # noqa: DTZ001 - the point


@pytest.mark.sqlite_only
def test_a_time_bound_to_an_undeclared_parameter_is_refused(db):
    assert "moment" not in TIME_PARAMS
    with pytest.raises(TypeError, match="TIME_PARAMS"), db.read() as tx:
        tx.rows(text("SELECT slot FROM scheduled_runs WHERE started_at >= :moment"),
                moment=datetime(2026, 3, 1, tzinfo=timezone.utc))
