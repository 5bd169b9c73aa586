"""The scheduler's slots: one row per slot of a scheduled job; the insert that lands wins it."""
from integration.store.types import text

# Correct on any engine: the primary key decides, not "SQLite has one writer".
CLAIM_SLOT = text("INSERT INTO scheduled_runs (slot, worker_id, started_at) VALUES (:slot, :worker_id, :started_at)"
                  " ON CONFLICT (slot) DO NOTHING")
RECORD_RESULT = text("UPDATE scheduled_runs SET retried = :retried WHERE slot = :slot")
SLOTS = text("SELECT slot, worker_id, started_at, retried FROM scheduled_runs ORDER BY slot")
