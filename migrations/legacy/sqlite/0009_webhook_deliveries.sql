-- Every delivery ID a sender gave us (the billing webhook's webhook-id, Zuora's Zuora-Notification-Id),
-- remembered for at least that sender's replay window, whatever its delivery did: created an event,
-- repeated one, or was coalesced into one already pending (whose own dedupe_key is another
-- delivery's). Without it a coalesced delivery left no trace, and the same delivery sent again after
-- that event ran created and ran a new one. The primary key is what makes two copies arriving at
-- once record one delivery (integration.store.inbox); the worker deletes rows past forget_after.
CREATE TABLE webhook_deliveries (
    delivery_key TEXT PRIMARY KEY,      -- "<source>:<delivery ID>", as in events.dedupe_key
    event_id TEXT NOT NULL,             -- the event it created, repeated or joined
    received_at TEXT NOT NULL,
    forget_after TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_forget ON webhook_deliveries (forget_after);
