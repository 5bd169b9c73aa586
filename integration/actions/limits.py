"""The limits of the operator actions, declared once. The admin API's schemas, the console's forms and
the commands' options all read them, so ``curl``, a form and a shell refuse the same input."""
from __future__ import annotations

from integration.domain.kinds import METER_ID_MAX_LENGTH
from integration.store.failures import MAX_IDS

EVENT_ID_MAX = 100
"""Longest event ID (the inbox's IDs are shorter): a longer one names no event and is not looked up."""
SELECTOR_MAX_IDS = MAX_IDS
"""Most event IDs one retry or delete may name (the store's own rule: keeps one transaction short)."""
ACCOUNT_ID_MAX = 64
"""Longest account ID an operator names to link or sync (a Zuora ID or number; a billing ID to sync)."""
ID_MAX = 255
"""Longest other ID: a billing account to link, a mapping's Zuora or billing ID to look up."""
SYNC_MAX_IDS = 10
"""Most accounts one on-demand sync request names, Zuora and billing together."""
LINK_WAIT_SECONDS = 20.0
"""How long the admin API and the console wait for a worker to write a link before answering "queued"."""
PAGE_DEFAULT = 100
"""Items on one page of a look-up when the caller does not say."""
PAGE_MAX = 500
"""Most items on one page of a look-up (the commands read every page at this size)."""
METER_ID_MAX = METER_ID_MAX_LENGTH
"""Longest meter ID (the domain's rule)."""
