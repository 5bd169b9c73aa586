"""The failure list (failed events) and the operator's actions on it."""
from sqlalchemy import bindparam

from integration.store.types import text

_ITEM = ("SELECT seq, id, object_type, object_id, source, error_code AS code, last_error AS message, attempts,"
         " first_failed_at, last_failed_at FROM events")
# Paged by ``seq`` (insertion order, assigned once): a failure retried and failed again keeps its place.
PAGE = text(
    f"{_ITEM} WHERE status = 'failed' AND (CAST(:object_type AS TEXT) IS NULL OR object_type = :object_type)"
    " AND (CAST(:code AS TEXT) IS NULL OR error_code = :code) AND seq > :after ORDER BY seq LIMIT :limit")

# Selections for retry/delete (IDs only; the change itself is one keyed update per event).
FAILED_BY_IDS = text("SELECT id FROM events WHERE status = 'failed' AND id IN :ids").bindparams(
    bindparam("ids", expanding=True))
FAILED_BY_TYPE = text("SELECT id FROM events WHERE status = 'failed' AND object_type = :object_type")
FAILED_ALL = text("SELECT id FROM events WHERE status = 'failed'")
# The failed usage of failed invoices among ``ids`` (retrying an invoice retries its usage).
FAILED_USAGE_OF = text(
    "SELECT u.id FROM events u WHERE u.status = 'failed' AND u.object_type = 'usage' AND u.object_id IN"
    " (SELECT i.object_id FROM events i WHERE i.status = 'failed' AND i.object_type = 'invoice' AND i.id IN :ids)"
).bindparams(bindparam("ids", expanding=True))
RECENT = text(
    "SELECT id FROM events WHERE status = 'failed' AND (error_code IS NULL OR error_code <> :missing)"
    " AND waiting_for IS NULL AND last_failed_at >= :since ORDER BY last_failed_at, seq LIMIT :cap")

DELETE_ONE = text("UPDATE events SET status = 'deleted', lease_owner = NULL, lease_expires_at = NULL,"
                  " updated_at = :now WHERE id = :id AND status = 'failed'")
COUNTS_BY_CODE = text("SELECT COALESCE(error_code, 'UNKNOWN') AS code, COUNT(*) AS n FROM events"
                      " WHERE status = 'failed' GROUP BY COALESCE(error_code, 'UNKNOWN')")
