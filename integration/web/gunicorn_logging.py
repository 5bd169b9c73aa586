"""gunicorn's own log lines through the service's secret masking (``gunicorn_conf.logger_class``).

gunicorn writes its error log (``gunicorn.error``: worker start and exit, timeouts, a request it could not
parse) through handlers of its own, which ``integration.logs.configure_logging`` never sees: a request line
that carried a credential in its query string reached the log in full. ``ServiceLogger`` is gunicorn's logger
with ``RedactingFilter`` on each of those handlers, holding every secret configured in the environment, in
the master and (inherited across the fork) in every worker. gunicorn keeps its own format and destination.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from gunicorn import glogging

from integration.config import _VARIABLES
from integration.logs import RedactingFilter


def environment_secrets(environ: Mapping[str, str]) -> list[str]:
    """The value of every variable ``config`` treats as a secret. Read raw, not through ``load_config``:
    masking must work even while a configuration is being refused for another variable."""
    return [environ[name] for name, (_required, secret) in _VARIABLES.items() if secret and environ.get(name)]


class ServiceLogger(glogging.Logger):
    """gunicorn's logger, every handler of it masking the configured secrets."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        masking = RedactingFilter(environment_secrets(os.environ))
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                    handler.removeFilter(old)
                handler.addFilter(masking)
