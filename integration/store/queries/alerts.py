"""The failure-alert digest's slots and the failures new since the last delivered digest."""
from integration.store.types import text

CLAIM = text("INSERT INTO alert_digests (slot, worker_id, claimed_at, through) VALUES (:slot, :worker_id, :now, :now)"
             " ON CONFLICT (slot) DO NOTHING RETURNING slot")
THROUGH = text("SELECT through FROM alert_digests WHERE slot = :slot")
LAST_DELIVERED = text("SELECT MAX(through) AS t FROM alert_digests WHERE delivered_at IS NOT NULL"
                      " AND through < :through")
# S608: _NEW is a constant fragment of this module, every value is a bound parameter.
_NEW = ("status = 'failed' AND last_failed_at <= :through"
        " AND (CAST(:since AS TEXT) IS NULL OR last_failed_at > :since)")
NEW_BY_CODE = text(f"SELECT COALESCE(error_code, 'UNKNOWN') AS code, COUNT(*) AS n FROM events WHERE {_NEW}"  # noqa: S608
                   " GROUP BY COALESCE(error_code, 'UNKNOWN') ORDER BY n DESC, code")
NEW_FIRST = text("SELECT id, object_type, object_id, error_code, last_error, last_failed_at FROM events"  # noqa: S608
                 f" WHERE {_NEW}"
                 " ORDER BY last_failed_at, seq LIMIT :first")
RECORD = text("UPDATE alert_digests SET failures = :failures, delivered_at = :delivered_at, error = :error"
              " WHERE slot = :slot")
