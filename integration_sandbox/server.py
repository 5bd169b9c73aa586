"""Run a WSGI app on a free localhost port in a background thread.

Used by the demo, the tests and ``integration sandbox`` to put the sandboxes (or the service
itself) on real HTTP without a separate process.
"""
from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    """No access log lines: the service logs what matters as JSON, the sandboxes keep their own."""

    def log_request(self, *args, **kwargs) -> None:
        pass


POLL_INTERVAL = 0.02
"""Seconds between the serve loop's checks for ``stop()``. ``shutdown`` waits for the next check,
and socketserver's default (0.5 s) made every stop — one per test that starts a server — take
half a second; an idle check every 20 ms costs next to nothing."""


class ServerThread:
    """A threaded werkzeug server; ``url`` is its base URL once started."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.server: BaseWSGIServer = make_server(host, port, app, threaded=True,
                                                  request_handler=_QuietHandler)
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL},
                                        name=f"server-{self.port}", daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
