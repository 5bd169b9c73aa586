"""The inbox: events, their attempts, claims and leases."""
from integration.store.types import text

# record(): one statement decides, on any engine. The insert lands, or meets the unique dedupe_key
# (a repeat of the same notification) or the partial unique index that allows one *coalescing*
# event per object and type (migration 0004) and does nothing; the caller then reads which one.
INSERT = text(
    "INSERT INTO events (id, source, type, object_type, object_id, object_key, dedupe_key, payload,"
    " next_attempt_at, created_at, updated_at, series, series_key, coalescing)"
    " VALUES (:id, :source, :type, :object_type, :object_id, :object_key, :dedupe_key, :payload,"
    " :now, :now, :now, 1, :series_key, :coalescing) ON CONFLICT DO NOTHING RETURNING id")
BY_DEDUPE_KEY = text("SELECT * FROM events WHERE dedupe_key = :dedupe_key")
COALESCING = text("SELECT id FROM events WHERE object_key = :object_key AND type = :type AND coalescing = 1")
ACTIVE = text("SELECT id FROM events WHERE object_key = :object_key AND status IN ('pending', 'running')"
              " ORDER BY created_at LIMIT 1")

# claim(): two index-ordered scans rather than one OR (with a large backlog, one query over both
# statuses sorted every due event on every claim: 30 ms at 50k, bench/). Per dialect only in their
# last words: on PostgreSQL the candidates are locked FOR UPDATE SKIP LOCKED, so concurrent claimers
# walk past each other's rows instead of queueing on them (SQLite has one writer at a time).
_EXPIRED_LEASES = ("SELECT id, object_key FROM events WHERE status = 'running' AND lease_expires_at <= :now"
                   " ORDER BY lease_expires_at LIMIT :scan")
# Not an object with a running event, even one whose lease expired: that one is re-claimed first (by
# the expired-lease scan), so no engine ever runs two events of one object.
_DUE = ("SELECT e.id, e.object_key FROM events e WHERE e.status = 'pending' AND e.next_attempt_at <= :now"
        " AND NOT EXISTS (SELECT 1 FROM events r WHERE r.object_key = e.object_key AND r.status = 'running')"
        " ORDER BY e.next_attempt_at, e.created_at LIMIT :scan")
EXPIRED_LEASES = {"sqlite": text(_EXPIRED_LEASES), "postgresql": text(_EXPIRED_LEASES + " FOR UPDATE SKIP LOCKED")}
DUE = {"sqlite": text(_DUE), "postgresql": text(_DUE + " FOR UPDATE OF e SKIP LOCKED")}
# PostgreSQL: new work is announced on this channel in the transaction that makes it due (delivered
# at commit), so idle workers LISTENing on it wake at once (integration.store.listen).
NOTIFY = {"postgresql": text("NOTIFY integration_events")}
# The inbox has work now or within a second (the local stack's "settled" check).
BUSY = text("SELECT COUNT(*) FROM events WHERE status = 'running' OR (status = 'pending' AND next_attempt_at <= :soon)")
# Takes the event only if it is still claimable, so two claimers can never both take it.
TAKE = text(
    "UPDATE events SET status = 'running', coalescing = 0, attempts = attempts + 1, lease_owner = :worker_id,"
    " lease_expires_at = :lease_until, updated_at = :now WHERE id = :id"
    " AND ((status = 'pending' AND next_attempt_at <= :now) OR (status = 'running' AND lease_expires_at <= :now))"
    " RETURNING *")
# An attempt still open when its event is claimed again is one whose worker died: lost.
LOSE_OPEN_ATTEMPTS = text("UPDATE attempts SET ended_at = :now, outcome = 'lost' WHERE event_id = :id"
                          " AND ended_at IS NULL")
OPEN_ATTEMPT = text("INSERT INTO attempts (event_id, series, attempt, worker_id, started_at)"
                    " VALUES (:id, :series, :attempt, :worker_id, :now)")
NEXT_DUE = text(
    "SELECT MIN(t) AS due FROM (SELECT MIN(next_attempt_at) AS t FROM events WHERE status = 'pending'"
    " UNION ALL SELECT MIN(lease_expires_at) AS t FROM events WHERE status = 'running') AS due_times")
HEARTBEAT = text("UPDATE events SET lease_expires_at = :lease_until WHERE id = :id AND status = 'running'"
                 " AND lease_owner = :worker_id")

GET = text("SELECT * FROM events WHERE id = :id")
CLOSE_ATTEMPT = text(
    "UPDATE attempts SET ended_at = :now, outcome = :outcome, code = :code, message = :message"
    " WHERE event_id = :id AND series = :series AND attempt = :attempt AND ended_at IS NULL")
FINISH = text(
    "UPDATE events SET status = 'done', lease_owner = NULL, lease_expires_at = NULL, error_code = NULL,"
    " last_error = NULL, waiting_for = NULL, updated_at = :now WHERE id = :id")
FAIL = text(
    "UPDATE events SET status = 'failed', error_code = :code, last_error = :message, waiting_for = :waiting_for,"
    " lease_owner = NULL, lease_expires_at = NULL, first_failed_at = COALESCE(first_failed_at, :now),"
    " last_failed_at = :now, updated_at = :now WHERE id = :id")
RESCHEDULE = text(
    "UPDATE events SET status = 'pending', next_attempt_at = :due, last_error = :message, lease_owner = NULL,"
    " lease_expires_at = NULL, updated_at = :now WHERE id = :id")
DROP_OPEN_ATTEMPT = text(
    "DELETE FROM attempts WHERE ended_at IS NULL AND event_id IN (SELECT id FROM events WHERE id = :id"
    " AND status = 'running' AND lease_owner = :worker_id)")
RELEASE = text(
    "UPDATE events SET status = 'pending', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
    " lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = :now, updated_at = :now"
    " WHERE id = :id AND status = 'running' AND lease_owner = :worker_id")

# A new attempt series for one failed event: due now, attempts reset, a fresh random key (made in
# Python, one per event, so the statement is the same on every engine).
NEW_SERIES = text(
    "UPDATE events SET status = 'pending', next_attempt_at = :now, attempts = 0, series = series + 1,"
    " series_key = :series_key, waiting_for = NULL, lease_owner = NULL, lease_expires_at = NULL,"
    " updated_at = :now WHERE id = :id AND status = 'failed'")
WAITING_FOR = text("SELECT id FROM events WHERE status = 'failed' AND waiting_for = :waiting_for")

HISTORY = text("SELECT series, attempt, worker_id, started_at, ended_at, outcome, code, message FROM attempts"
               " WHERE event_id = :id ORDER BY id")
OPEN_COUNTS = text("SELECT status, COUNT(*) AS n FROM events WHERE status IN ('pending', 'running') GROUP BY status")
STATUS_COUNTS = text("SELECT status, COUNT(*) AS n FROM events GROUP BY status")
OLDEST_DUE = text("SELECT MIN(next_attempt_at) AS t FROM events WHERE status = 'pending' AND next_attempt_at <= :now")

# Delivery IDs (migration sqlite/0009, postgresql/0006): every sender's delivery ID is remembered for
# its replay window, coalesced or not. The insert lands (a new delivery) or meets the primary key (a
# repeat; on PostgreSQL after the racing transaction that holds the key commits) and does nothing.
REMEMBER_DELIVERY = text(
    "INSERT INTO webhook_deliveries (delivery_key, event_id, received_at, forget_after)"
    " VALUES (:delivery_key, :event_id, :now, :forget_after) ON CONFLICT DO NOTHING RETURNING delivery_key")
DELIVERY = text("SELECT event_id FROM webhook_deliveries WHERE delivery_key = :delivery_key")
POINT_DELIVERY = text("UPDATE webhook_deliveries SET event_id = :event_id WHERE delivery_key = :delivery_key")
FORGET_DELIVERIES = text("DELETE FROM webhook_deliveries WHERE forget_after <= :now")
