"""Read-only views of the inbox for operators (the admin API, the console, the commands)."""
from sqlalchemy import bindparam

from integration.store.types import text

# Newest first by ``seq`` (insertion order, assigned once), so paging never skips or repeats a row.
EVENTS_PAGE = text(
    "SELECT seq, id, source, type, object_type, object_id, status, attempts, error_code, last_error,"
    " created_at, updated_at FROM events"
    " WHERE (CAST(:status AS TEXT) IS NULL OR status = :status)"
    " AND (CAST(:source AS TEXT) IS NULL OR source = :source)"
    " AND (CAST(:type AS TEXT) IS NULL OR type = :type)"
    " AND (CAST(:object_id AS TEXT) IS NULL OR object_id = :object_id)"
    " AND seq < :before ORDER BY seq DESC LIMIT :limit")
COUNTS_BY_STATUS = text("SELECT status, COUNT(*) AS n FROM events GROUP BY status")
LAST_DONE_PER_TYPE = text("SELECT type, MAX(updated_at) AS at FROM events WHERE status = 'done'"
                          " GROUP BY type ORDER BY type")
ACTIONABLE_AMONG = text("SELECT id FROM events WHERE status <> 'deleted' AND id IN :ids").bindparams(
    bindparam("ids", expanding=True))
