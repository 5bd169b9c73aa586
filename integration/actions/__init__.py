"""The operator actions, once: retry and delete failures, link two accounts, sync now, remove a meter's
settings, and the look-ups (mappings, failures, events, one event). Each is a plain function over the
store that the admin API (integration.web.admin*), the console (integration.web.console_*) and the
commands (integration.cli) all call; its limits live in ``limits`` and its metrics are counted inside it,
so a retry counts the same whichever door it came through.

May import store, domain, config and metrics; never web or cli (tests/test_layout.py)."""
