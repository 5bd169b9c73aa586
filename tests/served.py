"""`integration serve` as a test talks to it from outside: a real gunicorn with HeadFirstWorker, two worker
processes and multiprocess metrics, on a free loopback port, and raw socket exchanges with it."""
from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from integration.store.db import Database
from tests.conftest import service_env
from tests.e2e_stack import free_port

CALLOUT_AUTH = "Basic " + base64.b64encode(b"zuora:callout-password-2b8e").decode()


class Served:
    """`integration serve --no-worker` on a free loopback port, its output in a file."""

    def __init__(self, workdir: Path, **extra_env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = f"sqlite:///{workdir}/integration.db"
        self.log_path = workdir / "serve.log"
        env = {**service_env(self.database_url), **extra_env}
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "integration", "serve", "--no-worker", "--workers", "2",
                 "--host", "127.0.0.1", "--port", str(self.port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:  # wait until gunicorn answers (a request made while a worker boots waits in the backlog)
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"`integration serve` did not start:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text()

    def events(self) -> list[dict]:
        return [dict(r) for r in Database(self.database_url).utils().execute("SELECT * FROM events").fetchall()]

    def stop(self) -> None:
        """SIGTERM to `integration serve`, which stops gunicorn and waits for it."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def raw_exchange(port: int, request: bytes, timeout: float = 15) -> bytes:
    """Send raw bytes and read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def split_answer(answer: bytes) -> tuple[int, dict, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


def refused_counts(served) -> dict[tuple[str, str], float]:
    text = requests.get(f"{served.url}/metrics", timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    family = families.get("integration_webhook_refused")
    return {(s.labels["route"], s.labels["reason"]): s.value
            for s in (family.samples if family else []) if s.name.endswith("_total")}
