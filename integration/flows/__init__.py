"""The five flows, registered by event type for the worker.

``build_handlers(services)`` wires each flow to the process's clients and store. Extra handlers
can be plugged in with ``INTEGRATION_HANDLER_PLUGINS=module:function[,…]``: each function takes the
``Services`` and returns ``{event_type: handler}`` (used by the tests, and for custom event types).
"""
from __future__ import annotations

import importlib
import os

from ..services import Services


def build_handlers(services: Services) -> dict:
    from . import accounts, invoices

    handlers: dict = {**accounts.handlers(services), **invoices.handlers(services)}
    for spec in filter(None, (s.strip() for s in os.environ.get("INTEGRATION_HANDLER_PLUGINS", "").split(","))):
        module_name, _, function_name = spec.partition(":")
        handlers.update(getattr(importlib.import_module(module_name), function_name)(services))
    return handlers
