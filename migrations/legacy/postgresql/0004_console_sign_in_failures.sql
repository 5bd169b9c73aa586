-- Failed console sign-ins (CONTRACT §8: rate-limited per client address), kept in the store so that
-- the limit holds across every web process and host, not once per gunicorn worker. Rows older than
-- the limit's window are deleted as new ones arrive.
CREATE TABLE console_sign_in_failures (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    address TEXT NOT NULL,
    failed_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX console_sign_in_failures_address ON console_sign_in_failures (address, failed_at);
CREATE INDEX console_sign_in_failures_time ON console_sign_in_failures (failed_at);
