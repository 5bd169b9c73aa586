"""Reconciliation's watermark, its baseline (what existed before the service), and the check "has this
object an event the inbox already handles"."""
from integration.store.types import text

WATERMARK = text("SELECT watermark FROM reconcile_state WHERE name = :name")
STORE_CREATED = text("SELECT MIN(created_at) AS t FROM store_created")
# Forward only: a slower pass that finishes after a newer one never moves the watermark back.
ADVANCE = text("INSERT INTO reconcile_state (name, watermark, updated_at) VALUES (:name, :watermark, :now)"
               " ON CONFLICT (name) DO UPDATE SET watermark = excluded.watermark, updated_at = excluded.updated_at"
               " WHERE reconcile_state.watermark < excluded.watermark")
HANDLED = text("SELECT status FROM events WHERE object_key = :object_key"
               " AND status IN ('pending', 'running', 'failed', 'done') LIMIT 1")
# The baseline: once taken, never retaken or moved (the first pass to finish it wins; a racing one is a no-op).
BASELINE_TAKEN = text("SELECT watermark FROM reconcile_state WHERE name = :name")
FINISH_BASELINE = text("INSERT INTO reconcile_state (name, watermark, updated_at) VALUES (:name, :taken_at, :now)"
                       " ON CONFLICT (name) DO NOTHING")
RECORD_BASELINE = text("INSERT INTO reconcile_baseline (kind, object_id, recorded_at) VALUES (:kind, :object_id, :now)"
                       " ON CONFLICT (kind, object_id) DO NOTHING")
IN_BASELINE = text("SELECT 1 FROM reconcile_baseline WHERE kind = :kind AND object_id = :object_id")
BASELINE_COUNTS = text("SELECT kind, COUNT(*) AS n FROM reconcile_baseline GROUP BY kind")
# Voids (CONTRACT §12): a mapped invoice whose Zuora twin is not undone yet, and whether a failed event of it
# is on the failure list (whose retries own it).
NOT_REVERSED = text("SELECT 1 FROM id_mappings WHERE type = 'invoice' AND billing_id = :billing_id"
                    " AND reversed_at IS NULL")
FAILED = text("SELECT 1 FROM events WHERE object_key = :object_key AND status = 'failed' LIMIT 1")
