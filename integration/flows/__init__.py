"""The five flows, registered by event type for the worker.

``build_handlers(services)`` wires each flow to the process's clients and store. Extra handlers
can be plugged in with ``INTEGRATION_HANDLER_PLUGINS=module:function[,…]``: each function takes the
``Services`` and returns ``{event_type: handler}`` (used by the tests, and for custom event types).
"""
from __future__ import annotations

import os

from ..plugins import handler_plugins
from ..services import Services


def build_handlers(services: Services) -> dict:
    from . import accounts, invoices

    handlers: dict = {**accounts.handlers(services), **invoices.handlers(services)}
    for plugin in handler_plugins(os.environ):
        handlers.update(plugin(services))
    return handlers
