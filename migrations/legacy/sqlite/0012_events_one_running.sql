-- At most one running event per object, kept by the database on SQLite too, as PostgreSQL has since its
-- 0001 (the two engines' schemas are compared by tests/test_engine_schemas.py). A claim that meets it
-- rolls back to its savepoint and passes over that object (integration.store.inbox), on either engine.
-- The claim never made two on SQLite (one writer at a time, and its due scan skips an object with a
-- running event), so a store holds none; should one hold two anyway, every running event of that object
-- but the one whose lease ends last goes back to the queue as its lease had been lost (its open attempt
-- is marked 'lost' when it is claimed again), so the index can be built.
UPDATE events SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
WHERE status = 'running' AND EXISTS (
    SELECT 1 FROM events other WHERE other.object_key = events.object_key AND other.status = 'running'
      AND (COALESCE(other.lease_expires_at, '') > COALESCE(events.lease_expires_at, '')
           OR (COALESCE(other.lease_expires_at, '') = COALESCE(events.lease_expires_at, '')
               AND other.id > events.id)));
CREATE UNIQUE INDEX events_one_running ON events (object_key) WHERE status = 'running';
