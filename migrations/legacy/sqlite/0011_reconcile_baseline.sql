-- Onboarding safety (CONTRACT §12): the objects the service's first reconciliation pass saw in the two
-- tenants. Togai's accounts carry no timestamps, so "did this exist before the service?" is answered from
-- what the service saw, never from a missing field: the first pass records the ID of every Zuora account,
-- billing account and finalized billing invoice here, and a row named 'baseline' in reconcile_state once
-- it has seen them all. Later passes queue only objects that are neither here nor mapped; these are
-- `integration backfill`'s, which matches twins first. The primary key lets passes racing record one row.
CREATE TABLE reconcile_baseline (
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (kind, object_id)
);
