-- An explicit insertion sequence for events, replacing SQLite's rowid as the failure list's page
-- cursor (a rowid is SQLite's own and may be reused). Existing rows keep their rowid order.
ALTER TABLE events ADD COLUMN seq INTEGER;
UPDATE events SET seq = rowid;
CREATE UNIQUE INDEX events_seq ON events (seq);
-- Assigned on insert. This trigger is SQLite's form: SQLite runs one writer at a time, so MAX + 1
-- cannot be taken twice; PostgreSQL's migrations use an identity column instead.
CREATE TRIGGER events_assign_seq AFTER INSERT ON events WHEN NEW.seq IS NULL
BEGIN
    UPDATE events SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM events) WHERE id = NEW.id;
END;

-- Coalescing (a new event for an object joins the one already pending for it): at most one
-- coalescing event per object and type, kept by a partial unique index rather than by a
-- select-then-insert, so it holds on any engine. A recorded event is coalescing until it is
-- claimed; an event back in the queue after a retry or backoff is not a coalescing target, so
-- putting several failed events of one object back never collides with the index.
ALTER TABLE events ADD COLUMN coalescing INTEGER NOT NULL DEFAULT 0;
UPDATE events SET coalescing = 1 WHERE status = 'pending' AND NOT EXISTS (
    SELECT 1 FROM events older WHERE older.object_key = events.object_key AND older.type = events.type
      AND older.status = 'pending' AND (older.created_at < events.created_at
           OR (older.created_at = events.created_at AND older.rowid < events.rowid)));
CREATE UNIQUE INDEX events_one_coalescing ON events (object_key, type) WHERE coalescing = 1;
