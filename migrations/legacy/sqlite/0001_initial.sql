-- The inbox: every accepted webhook, admin sync and retry is one row, worked by the worker.
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,                -- zuora | billing | admin
    type TEXT NOT NULL,                  -- account.callout | account.created | account.updated | invoice.finalized
    object_type TEXT NOT NULL,           -- account | invoice | usage
    object_id TEXT NOT NULL,             -- the ID the event points at, in its source system
    object_key TEXT NOT NULL,            -- one sync of an object at a time: "<system>-<type>:<id>"
    dedupe_key TEXT NOT NULL UNIQUE,     -- notification / webhook ID: a repeat is the same event
    payload TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'done', 'failed', 'deleted')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner TEXT,
    lease_expires_at TEXT,
    error_code TEXT,
    last_error TEXT,
    waiting_for TEXT,                    -- MISSING_MAPPING: the mapping key that releases it
    first_failed_at TEXT,
    last_failed_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX events_due ON events (status, next_attempt_at);
CREATE INDEX events_object ON events (object_key, status);
CREATE INDEX events_failed ON events (status, error_code, last_failed_at);
CREATE INDEX events_waiting ON events (waiting_for) WHERE waiting_for IS NOT NULL;

-- Which record on one side is which on the other. Unique on each side per type.
CREATE TABLE id_mappings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL CHECK (type IN ('account', 'invoice', 'usage')),
    zuora_id TEXT NOT NULL,
    zuora_number TEXT,
    billing_id TEXT NOT NULL,            -- account: billing account ID; invoice: invoice ID; usage: line key
    billing_customer_id TEXT,
    billing_parent_id TEXT,              -- invoice/usage: the billing invoice it came from
    origin TEXT NOT NULL CHECK (origin IN ('zuora', 'billing', 'linked')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (type, zuora_id),
    UNIQUE (type, billing_id)
);
CREATE INDEX id_mappings_parent ON id_mappings (billing_parent_id);

-- Usage-meter settings: which Zuora subscription and charge a billing meter's usage lands on.
CREATE TABLE meter_settings (
    meter_id TEXT PRIMARY KEY,
    zuora_subscription_number TEXT NOT NULL,
    zuora_charge_number TEXT NOT NULL,
    uom TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('quantity', 'revenue')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One row per scheduled-retry slot: the worker that inserts it first runs that slot.
CREATE TABLE scheduled_runs (
    slot TEXT PRIMARY KEY,
    worker_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    retried INTEGER
);
