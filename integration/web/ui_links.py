"""Links from the console into the vendors' own UIs, from the URL templates an operator configured
(``ZUORA_UI_ACCOUNT_URL``, ``ZUORA_UI_INVOICE_URL``, ``BILLING_UI_ACCOUNT_URL``,
``BILLING_UI_INVOICE_URL``; ``{id}`` is replaced by the object's ID, URL-encoded)."""
from __future__ import annotations

from urllib.parse import quote

from integration.config import Config
from integration.domain import work
from integration.store.inbox import Event
from integration.store.mappings import Mapping


def _url(config: Config, variable: str, object_id: str | None) -> str | None:
    template = dict(config.ui_links).get(variable)
    return template.replace("{id}", quote(object_id, safe="")) if template and object_id else None


def object_links(config: Config, event: Event, mapping: Mapping | None) -> list[tuple[str, str]]:
    """(label, URL) for each side where the object's ID is known and a template is set."""
    kind = "ACCOUNT" if event.object_type == "account" else "INVOICE"
    from_zuora = work.side_of(event.object_key) == "zuora"
    zuora_id = mapping.zuora_id if mapping else (event.object_id if from_zuora else None)
    billing_id = mapping.billing_id if mapping else (None if from_zuora else event.object_id)
    if kind == "INVOICE" and mapping is None:
        billing_id = event.object_id
    links = [("Open in Zuora", _url(config, f"ZUORA_UI_{kind}_URL", zuora_id)),
             ("Open in the billing platform", _url(config, f"BILLING_UI_{kind}_URL", billing_id))]
    return [(label, url) for label, url in links if url]
