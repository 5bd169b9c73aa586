"""The flows, registered by event type for the worker.

``build_handlers(services)`` wires each flow to the process's clients and store. Extra handlers
can be plugged in with ``INTEGRATION_HANDLER_PLUGINS=module:function[,…]``: each function takes the
``Services`` and returns ``{event_type: handler}`` (used by the tests, and for custom event types).
"""
from __future__ import annotations

import os

from integration.flows.accounts import AccountFlows
from integration.flows.invoices import InvoiceFlow
from integration.flows.links import EVENT_TYPE as LINK_EVENT
from integration.flows.links import LinkFlow
from integration.flows.plugins import handler_plugins
from integration.flows.usage import UsageFlow
from integration.flows.voids import VoidFlow
from integration.services import Services


def build_handlers(services: Services) -> dict:
    """``{event_type: handler}`` for the worker: the flows, then any plug-ins. ``invoice.voided`` and
    ``invoice.updated`` are voids (CONTRACT §12); the invoice flow hands an invoice it finds void to them."""
    account_flows = AccountFlows(services)
    void_flow = VoidFlow(services)
    handlers: dict = {"account.callout": account_flows.from_zuora, "account.created": account_flows.from_billing,
                      "account.updated": account_flows.from_billing,
                      "invoice.finalized": InvoiceFlow(services, on_void=void_flow.void).handle,
                      "invoice.usage": UsageFlow(services).handle,
                      "invoice.voided": void_flow.handle, "invoice.updated": void_flow.handle,
                      LINK_EVENT: LinkFlow(services).handle}
    for plugin in handler_plugins(os.environ):
        handlers.update(plugin(services))
    return handlers
