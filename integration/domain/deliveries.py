"""How long each sender's delivery IDs are remembered: at least the window in which the same delivery
can come again, by a replay or by the sender's own retries (CONTRACT §3, dedupe).

A delivery that is coalesced into a pending event has no event of its own, so only this memory
(``integration.store.inbox``, ``webhook_deliveries``) makes a repeat of it a repeat. Longer is
harmless (a repeat of a delivery is never new work; events are pointers, fetched fresh), shorter
lets a captured delivery run again; the cost is one small row per delivery for the window.
"""
from __future__ import annotations

from datetime import timedelta

BILLING_DELIVERY_WINDOW = timedelta(hours=24)
"""A billing ``webhook-id``. A captured delivery passes the signature check only while its timestamp
is within the ±5 min tolerance, so at most 10 min after we first see it (it may arrive stamped up to
5 min ahead); a day covers that with room to spare, and a sender's own retries of a delivery whose
200 was lost (they keep the ``webhook-id`` and sign again with a new timestamp)."""

ZUORA_DELIVERY_WINDOW = timedelta(days=5)
"""A ``Zuora-Notification-Id`` (the same on every retry of one notification). A callout carries no
timestamp, so any copy can come again at any time; Zuora's own retries span at most 4 days (at most
5 delivery attempts, at most 1,440 minutes apart: reference/zuora-api.md §7), plus a day's margin.
The event a notification created keeps its dedupe key for the retention period besides."""
