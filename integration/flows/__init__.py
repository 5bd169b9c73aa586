"""The flows, registered by event type for the worker.

``build_handlers(services)`` wires each flow to the process's clients and store: one per kind of work
declared in ``integration.domain.work``, bound in ``integration.flows.registry``. Extra handlers
can be plugged in with ``INTEGRATION_HANDLER_PLUGINS=module:function[,…]``: each function takes the
``Services`` and returns ``{event_type: handler}`` (used by the tests, and for custom event types).
"""
from __future__ import annotations

import os

from integration.flows import registry
from integration.flows.plugins import handler_plugins
from integration.services import Services


def build_handlers(services: Services) -> dict[str, registry.Handler]:
    """``{event_type: handler}`` for the worker: the flows (``integration.flows.registry``), then any plug-ins."""
    handlers = registry.handlers(services)
    for plugin in handler_plugins(os.environ):
        handlers.update(plugin(services))
    return handlers
