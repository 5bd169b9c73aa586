"""Console sessions kept on the server (``integration.store.console_sessions``)."""
from integration.store.types import text

START = text("INSERT INTO console_sessions (id_hash, token_fingerprint, created_at, last_seen_at, expires_at)"
             " VALUES (:id_hash, :fingerprint, :now, :now, :expires_at)")
# Sessions past their expiry, and those of another ADMIN_TOKEN (rotated), go at the next sign-in.
PRUNE = text("DELETE FROM console_sessions WHERE expires_at <= :now OR token_fingerprint <> :fingerprint")
LIVE = text("SELECT token_fingerprint, created_at, last_seen_at, expires_at FROM console_sessions"
            " WHERE id_hash = :id_hash AND expires_at > :now")
# Never revives a session that expired (or ended) since it was read.
TOUCH = text("UPDATE console_sessions SET last_seen_at = :now, expires_at = :expires_at"
             " WHERE id_hash = :id_hash AND expires_at > :now")
END = text("DELETE FROM console_sessions WHERE id_hash = :id_hash")
COUNT = text("SELECT COUNT(*) FROM console_sessions")
