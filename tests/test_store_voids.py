"""The store's half of voids (CONTRACT §12), on both engines: a reversal is recorded on the invoice's mapping
row once, whoever records it second; a void before the push is recorded once, and never over a mapping."""
from __future__ import annotations

import pytest

from integration.domain.errors import TransientError
from integration.store import mappings, voids
from integration.store.db import Database

pytestmark = pytest.mark.both_engines


@pytest.fixture
def db(database_url) -> Database:
    store = Database(database_url, busy_timeout=2)
    store.migrate()
    yield store
    store.close()


def pushed(db: Database, invoice_id: str = "inv-1") -> None:
    with db.transaction() as tx:
        mappings.link("invoice", zuora_id=f"z-{invoice_id}", zuora_number="INV00000001", billing_id=invoice_id,
                      origin="billing")(tx)


def test_a_reversal_is_recorded_on_the_mapping_row_once(db):
    pushed(db)
    with db.transaction() as tx:
        voids.record_reversal("inv-1", "reversed", "cm-1")(tx)
    with db.transaction() as tx:  # a second undo of the same invoice (it should not have run) changes nothing
        voids.record_reversal("inv-1", "cancelled", None)(tx)
    row = mappings.find(db, "invoice", billing_id="inv-1")
    assert (row.reversal, row.credit_memo_id) == ("reversed", "cm-1") and row.reversed_at
    assert row.as_json()["reversal"] == "reversed" and row.as_json()["credit_memo_id"] == "cm-1"
    assert row.as_json()["reversed_at"].endswith("Z")
    with pytest.raises(ValueError, match="reversal must be one of"):
        voids.record_reversal("inv-1", "refunded", None)


def test_a_second_writer_on_another_connection_records_nothing(db, database_url):
    """The condition is in the UPDATE itself, so a writer that decided to record before the first one
    committed (another process, another host) still changes nothing."""
    pushed(db)
    other = Database(database_url, busy_timeout=2)
    try:
        with db.transaction() as first:
            voids.record_reversal("inv-1", "reversed", "cm-first")(first)
        with other.transaction() as second:
            voids.record_reversal("inv-1", "reversed", "cm-second")(second)
    finally:
        other.close()
    assert mappings.find(db, "invoice", billing_id="inv-1").credit_memo_id == "cm-first"


def test_an_unmapped_invoice_has_no_reversal_fields(db):
    pushed(db)
    item = mappings.find(db, "invoice", billing_id="inv-1").as_json()
    assert not {"reversal", "reversed_at", "credit_memo_id"} & set(item)


def test_a_void_before_the_push_is_recorded_once(db):
    assert voids.unpushed_void(db, "inv-2") is None
    with db.transaction() as tx:
        voids.record_unpushed("inv-2", "evt-1")(tx)
    with db.transaction() as tx:
        voids.record_unpushed("inv-2", "evt-2")(tx)
    found = voids.unpushed_void(db, "inv-2")
    assert (found.billing_id, found.event_id) == ("inv-2", "evt-1") and found.voided_at


def test_a_void_before_the_push_is_not_recorded_over_a_mapping(db):
    pushed(db, "inv-3")  # the push won the race: the void must reverse it, not record "never pushed"
    with pytest.raises(TransientError), db.transaction() as tx:
        voids.record_unpushed("inv-3", "evt-1")(tx)
    assert voids.unpushed_void(db, "inv-3") is None
