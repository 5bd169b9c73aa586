-- Keys the service makes for itself once and keeps (CONTRACT §2): the console's session key when
-- INTEGRATION_SECRET_KEY is unset. Random, never derived from ADMIN_TOKEN, so a signed cookie says
-- nothing about the token. The first process to need a key inserts it (the primary key decides which
-- insert lands, on any engine); every other process reads that one back.
CREATE TABLE service_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);
