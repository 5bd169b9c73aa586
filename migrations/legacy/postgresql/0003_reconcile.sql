-- Reconciliation (CONTRACT §9): the watermark up to which a completed pass has read the two tenants.
-- One row per name; it moves forward only when a pass completes, so a pass that dies midway leaves it
-- where it was and the next pass reads the same changes again (its queued events make that harmless).
CREATE TABLE reconcile_state (
    name TEXT PRIMARY KEY,
    watermark TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);
