"""The limits of the operator actions, declared once. The admin API's schemas, the console's forms and
the commands' options all read them, so ``curl``, a form and a shell refuse the same input
(tests/test_action_limits.py holds the three doors to it)."""
from __future__ import annotations

from integration.domain.kinds import METER_ID_MAX_LENGTH
from integration.store.failures import MAX_IDS

EVENT_ID_MAX = 100
"""Longest event ID (the inbox's IDs are shorter): a longer one names no event and is not looked up."""
EVENT_TYPE_MAX = 100
"""Longest event type a look-up filters by (``account.callout``, ``invoice.finalized``…)."""
CURSOR_MAX = 100
"""Longest paging cursor (``after``) a look-up takes back: the ones it hands out are a few characters."""
SELECTOR_MAX_IDS = MAX_IDS
"""Most event IDs one retry or delete may name (the store's own rule: keeps one transaction short)."""
ACCOUNT_ID_MAX = 64
"""Longest account ID an operator names to link or sync, on either side: Zuora's ``AccountId`` is at most
64 characters (CONTRACT §3), its account number 50, a Togai account ID 50 (reference/billing-platforms.md)."""
ID_MAX = 255
"""Longest other ID a look-up takes: a mapping's Zuora or billing ID, an event's object ID, a console search."""
SYNC_MAX_IDS = 10
"""Most accounts one on-demand sync request names, Zuora and billing together (CONTRACT §4)."""
LINK_WAIT_SECONDS = 30.0
"""How long ``integration link`` waits, by default, for a worker to write a link. Only the command waits:
the admin API and the console answer at once with the queued event (no web request waits on the store)."""
LINK_WAIT_MAX = 600
"""Longest wait ``integration link --wait`` accepts."""
PAGE_DEFAULT = 100
"""Items on one page of a look-up when the caller does not say."""
PAGE_MAX = 500
"""Most items on one page of a look-up (the commands read every page at this size)."""
METER_ID_MAX = METER_ID_MAX_LENGTH
"""Longest meter ID (the domain's rule)."""
