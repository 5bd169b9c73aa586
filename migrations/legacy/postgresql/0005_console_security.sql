-- Keys the service makes for itself once and keeps (CONTRACT §2): the console's session key when
-- INTEGRATION_SECRET_KEY is unset. Random, never derived from ADMIN_TOKEN, so a signed cookie says
-- nothing about the token. The first process to need a key inserts it (the primary key decides which
-- insert lands, on any engine); every other process reads that one back.
CREATE TABLE service_keys (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);

-- Console sessions, kept on the server so that signing out, rotating ADMIN_TOKEN and expiry end a
-- session everywhere, even for a copy of its cookie. The cookie carries a random session ID; the
-- store keeps only its SHA-256, so a copy of the store signs no one in. token_fingerprint (an HMAC of
-- ADMIN_TOKEN under the session key) ties a session to the token it was started with. expires_at is
-- the sooner of the absolute and the idle limit; rows past it are deleted at the next sign-in.
CREATE TABLE console_sessions (
    id_hash TEXT PRIMARY KEY,
    token_fingerprint TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    last_seen_at TEXT COLLATE "C" NOT NULL,
    expires_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);

-- Sign-in attempts per bucket (a client address, or a browser that signed in before) and window,
-- for the console and /admin/*: one row per bucket whose count is raised and read back in one atomic
-- upsert, so parallel guesses can never get more real checks than the limit. Replaces
-- console_sign_in_failures (one row per failure: counting those, then checking, let a burst through).
DROP TABLE console_sign_in_failures;
CREATE TABLE sign_in_attempts (
    bucket TEXT PRIMARY KEY,
    window_start TEXT COLLATE "C" NOT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX sign_in_attempts_window ON sign_in_attempts (window_start);
