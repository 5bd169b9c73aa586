"""Extra worker handlers named by ``INTEGRATION_HANDLER_PLUGINS=module:function[,…]``.

Each function takes the process's ``Services`` and returns ``{event_type: handler}``. Resolving
them is separate from calling them so that ``integration serve`` can refuse a plug-in that cannot
import before it starts anything, with one line that names it, instead of a worker that dies
with a traceback and is restarted forever.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

VARIABLE = "INTEGRATION_HANDLER_PLUGINS"


class PluginError(Exception):
    """A plug-in named in ``INTEGRATION_HANDLER_PLUGINS`` is malformed or cannot be loaded."""


def handler_plugins(environ: Mapping[str, str]) -> list[Callable[[Any], dict[str, Any]]]:
    """The plug-in functions, imported and checked, in the order given; PluginError on the first bad one."""
    found = []
    for spec in filter(None, (s.strip() for s in environ.get(VARIABLE, "").split(","))):
        module_name, _, function_name = spec.partition(":")
        if not module_name or not function_name:
            raise PluginError(f"{VARIABLE}: {spec!r} must be module:function")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - a plug-in's own import error is as much "cannot import" as a missing one
            raise PluginError(f"{VARIABLE}: cannot import module {module_name!r} "
                              f"({type(exc).__name__}: {exc})") from None
        function = getattr(module, function_name, None)
        if not callable(function):
            raise PluginError(f"{VARIABLE}: module {module_name!r} has no function {function_name!r}")
        found.append(function)
    return found
