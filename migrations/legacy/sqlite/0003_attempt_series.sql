-- Attempt series (CONTRACT §6 "Retries that really retry"): an event's automatic retries share one
-- series and so one Idempotency-Key; an operator's retry, the scheduled retry or a MISSING_MAPPING
-- release starts the next series with a fresh random key, so Zuora's stored answer (failures
-- included, kept 24 h) of an earlier series is never replayed to it.
ALTER TABLE events ADD COLUMN series INTEGER NOT NULL DEFAULT 1;
ALTER TABLE events ADD COLUMN series_key TEXT;
UPDATE events SET series_key = lower(hex(randomblob(8))) WHERE series_key IS NULL;

-- One row per attempt, written in the claim's transaction and completed with its outcome, so an
-- attempt whose worker was killed still shows (and becomes 'lost' when its lease is taken over).
CREATE TABLE attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    series INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    worker_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT CHECK (outcome IN ('done', 'rescheduled', 'failed', 'lost')),
    code TEXT,
    message TEXT
);
CREATE INDEX attempts_event ON attempts (event_id, id);
