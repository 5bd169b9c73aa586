"""A tiny round-robin HTTP load balancer for end-to-end tests: several `integration serve
--no-worker` processes behind one URL, as a platform's router would put them. A backend that
refuses the connection (it was killed) is skipped and the next one is tried; a request cut off
mid-way is sent to the next backend too (webhooks are deduplicated by their notification IDs)."""
from __future__ import annotations

import itertools
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class Balancer:
    def __init__(self, backends: list[str]):
        self.backends = list(backends)
        self._turn = itertools.count()
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"host"}}
                start = next(balancer._turn)
                for i in range(len(balancer.backends)):
                    backend = balancer.backends[(start + i) % len(balancer.backends)]
                    try:
                        resp = requests.request(self.command, backend + self.path, data=body, headers=headers,
                                                timeout=30, allow_redirects=False)
                    except requests.RequestException:
                        continue
                    self.send_response(resp.status_code)
                    for k, v in resp.headers.items():
                        if k.lower() not in _HOP:
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(resp.content)))
                    self.end_headers()
                    self.wfile.write(resp.content)
                    return
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Balancer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
