-- Failure-alert digests (CONTRACT §8): one row per interval slot, claimed by the one process that
-- sends it (primary key), so many workers on many hosts send one digest per slot. ``through`` is
-- the newest failure time the digest covers; it counts as the watermark only once ``delivered_at``
-- is set, so a digest that could not be delivered is folded into the next slot's.
CREATE TABLE alert_digests (
    slot TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    through TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    delivered_at TEXT,
    error TEXT
);
CREATE INDEX alert_digests_delivered ON alert_digests (delivered_at, through);
-- The event list (admin API, console): newest first by seq, optionally by status.
CREATE INDEX events_status_seq ON events (status, seq);
