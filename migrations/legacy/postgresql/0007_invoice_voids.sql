-- Voids (CONTRACT §12). A billing invoice voided after it reached Zuora has its Zuora twin cancelled
-- (a Draft) or reversed into a credit memo (a Posted one); the mapping row records which, when, and the
-- credit memo, and a conditional UPDATE (reversed_at IS NULL) records it once, however many voids run.
ALTER TABLE id_mappings ADD COLUMN reversed_at TEXT COLLATE "C";
ALTER TABLE id_mappings ADD COLUMN reversal TEXT CHECK (reversal IN ('cancelled', 'reversed'));
ALTER TABLE id_mappings ADD COLUMN credit_memo_id TEXT;

-- A billing invoice voided before it reached Zuora: recorded so that it is never pushed afterwards,
-- whatever event of it comes later. Only while the invoice has no mapping (one INSERT … SELECT decides).
CREATE TABLE unpushed_voids (
    billing_id TEXT PRIMARY KEY,
    event_id TEXT,
    voided_at TEXT COLLATE "C" NOT NULL
);
