"""Sign-in attempts per bucket and window (``integration.store.sign_ins``)."""
from integration.store.types import text

# Count one attempt and read the count back in one statement, atomic on either engine: the primary key
# serialises concurrent upserts of one bucket (SQLite: the write lock; PostgreSQL: the row lock), and
# every right-hand side reads the row as it was, so a window that has run out starts again at 1.
COUNT_ATTEMPT = text(
    "INSERT INTO sign_in_attempts (bucket, window_start, attempts) VALUES (:bucket, :now, 1)"
    " ON CONFLICT (bucket) DO UPDATE SET"
    " attempts = CASE WHEN sign_in_attempts.window_start <= :expired THEN 1 ELSE sign_in_attempts.attempts + 1 END,"
    " window_start = CASE WHEN sign_in_attempts.window_start <= :expired THEN :now"
    " ELSE sign_in_attempts.window_start END"
    " RETURNING attempts, window_start")
PRUNE = text("DELETE FROM sign_in_attempts WHERE window_start <= :expired")
# A right token gives back the attempt it used, in its own window only (never a later one's).
REFUND = text("UPDATE sign_in_attempts SET attempts = attempts - 1"
              " WHERE bucket = :bucket AND window_start = :window_start AND attempts > 0")
BUCKETS = text("SELECT bucket, window_start, attempts FROM sign_in_attempts ORDER BY bucket")
