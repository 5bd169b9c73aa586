"""Voids (CONTRACT §12): a reversal recorded on the invoice's mapping row, once; a void before the push."""
from integration.store.types import text

# Once, on any engine: the row's own reversed_at decides, so of two writers (two void events, a replay,
# a worker whose lease was taken over) exactly one records the reversal and the other changes nothing.
RECORD_REVERSAL = text(
    "UPDATE id_mappings SET reversed_at = :now, reversal = :reversal, credit_memo_id = :credit_memo_id,"
    " updated_at = :now WHERE type = 'invoice' AND billing_id = :billing_id AND reversed_at IS NULL")
# A void of an invoice that never reached Zuora: recorded only while the invoice has no mapping, in one
# statement, so a push that recorded its mapping first makes this insert nothing (the void then reverses).
RECORD_UNPUSHED = text(
    "INSERT INTO unpushed_voids (billing_id, event_id, voided_at) SELECT :billing_id, :event_id, :now"
    " WHERE NOT EXISTS (SELECT 1 FROM id_mappings WHERE type = 'invoice' AND billing_id = :billing_id)"
    " ON CONFLICT (billing_id) DO NOTHING RETURNING billing_id")
UNPUSHED = text("SELECT billing_id, event_id, voided_at FROM unpushed_voids WHERE billing_id = :billing_id")
