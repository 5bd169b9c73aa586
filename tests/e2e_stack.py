"""The service as real processes (`integration serve` with several gunicorn workers, separate
`integration worker` processes) against both sandboxes, for end-to-end crash and fault tests.

The sandboxes run in the test process on their own threads; everything the service does reaches
them over HTTP, and the tests assert on the sandboxes' own records.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from integration.store.db import Database
from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox
from tests.balancer import Balancer
from tests.engines import store_sql

CALLOUT_USER = "zuora-callouts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_until(proc: subprocess.Popen, marker: str, timeout: float) -> str:
    """A running command's output up to the line holding ``marker`` (it must not exit first)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while not any(marker in line for line in lines):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        lines.append(proc.stdout.readline())
    return "".join(lines)


class ProcessStack:
    def __init__(self, workdir: Path, *, web_workers: int = 2, lease_seconds: float = 2.0,
                 http_timeout: float = 5.0, backoff_seconds: float = 0.5, zuora_options: dict | None = None,
                 database_url: str | None = None, web_processes: int = 1):
        self.workdir = Path(workdir)
        self.database_url = database_url or f"sqlite:///{self.workdir / 'integration.db'}"
        self.web_processes = web_processes
        self.webs: list[subprocess.Popen] = []
        self.balancer: Balancer | None = None
        self.web_workers = web_workers
        self.callout_password = secrets.token_urlsafe(12)
        self.admin_token = secrets.token_urlsafe(32)
        self.zuora_app = create_zuora_sandbox(callout_username=CALLOUT_USER, callout_password=self.callout_password,
                                              callout_retry_interval=0.5, callout_attempts=5,
                                              **(zuora_options or {}))
        self.billing_app = create_billing_sandbox(webhook_retry_schedule=(0.2, 0.5, 1.0, 2.0, 4.0))
        self.zuora_sb = self.zuora_app.extensions["zuora_sandbox"]
        self.billing_sb = self.billing_app.extensions["billing_sandbox"]
        self.lease_seconds = lease_seconds
        self.http_timeout = http_timeout
        self.backoff_seconds = backoff_seconds
        self.web: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.kills = 0
        self.logs: list[Path] = []

    def start(self) -> ProcessStack:
        self.zuora = ServerThread(self.zuora_app).start()
        self.billing = ServerThread(self.billing_app).start()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ZUORA_", "BILLING_", "ADMIN_"))}
        self.env.update({
            "DATABASE_URL": self.database_url,
            "ZUORA_BASE_URL": self.zuora.url, "ZUORA_CLIENT_ID": self.zuora_sb.client_id,
            "ZUORA_CLIENT_SECRET": self.zuora_sb.client_secret,
            "BILLING_BASE_URL": self.billing.url, "BILLING_API_TOKEN": self.billing_sb.api_token,
            "BILLING_WEBHOOK_SECRET": self.billing_sb.webhook_secret, "ADMIN_TOKEN": self.admin_token,
            "ZUORA_CALLOUT_USERNAME": CALLOUT_USER, "ZUORA_CALLOUT_PASSWORD": self.callout_password,
            "INTEGRATION_LEASE_SECONDS": str(self.lease_seconds), "INTEGRATION_HTTP_TIMEOUT": str(self.http_timeout),
            "INTEGRATION_BACKOFF_SECONDS": str(self.backoff_seconds),
            "PYTHONUNBUFFERED": "1",
        })
        ports = [self.port] + [free_port() for _ in range(self.web_processes - 1)]
        for port in ports:  # several web processes start (and migrate) at once
            self.webs.append(self._spawn("web", "serve", "--no-worker", "--workers", str(self.web_workers),
                                         "--host", "127.0.0.1", "--port", str(port)))
        self.web = self.webs[0]
        for port, web in zip(ports, self.webs, strict=False):
            deadline = time.monotonic() + 60
            while not self._ready(f"http://127.0.0.1:{port}"):
                if time.monotonic() > deadline or web.poll() is not None:
                    raise RuntimeError(f"service did not come up; see {self.logs}")
                time.sleep(0.1)
        if self.web_processes > 1:  # one URL in front of them all, as a platform's router
            self.balancer = Balancer([f"http://127.0.0.1:{port}" for port in ports]).start()
            self.url = self.balancer.url
        requests.post(f"{self.zuora.url}/_sandbox/config", timeout=10,
                      json={"callout_url": f"{self.url}/webhooks/zuora"}).raise_for_status()
        requests.post(f"{self.billing.url}/_sandbox/config", timeout=10,
                      json={"webhook_url": f"{self.url}/webhooks/billing"}).raise_for_status()
        self.db = Database(self.env["DATABASE_URL"])
        return self

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = self.workdir / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        # A session of its own: a web process is a supervisor plus gunicorn's master and workers,
        # and a host that dies takes all of them (kill_web kills the group). The child keeps its own
        # copy of the log's descriptor, so ours is closed once it is started.
        with open(log, "w") as handle:
            return subprocess.Popen([sys.executable, "-m", "integration", *args], env=self.env,
                                    stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    def _ready(self, url: str | None = None) -> bool:
        try:
            return requests.get(f"{url or self.url}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    # -- workers -------------------------------------------------------------------------------------

    def start_worker(self) -> subprocess.Popen:
        worker = self._spawn("worker", "worker", "--poll-interval", "0.05")
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[subprocess.Popen]:
        return [w for w in self.workers if w.poll() is None]

    def kill_worker(self, worker: subprocess.Popen) -> None:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        self.kills += 1

    def kill_web(self, index: int) -> None:
        """SIGKILL one web process (its host died); the balancer sends its traffic to the others."""
        os.killpg(self.webs[index].pid, signal.SIGKILL)
        self.webs[index].wait(timeout=10)

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for proc in [*self.workers, *self.webs]:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [*self.workers, *self.webs]:
            if proc is not None:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.zuora_sb.close()
        self.billing_sb.close()
        self.zuora.stop()
        self.billing.stop()

    def __enter__(self) -> ProcessStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- observing -------------------------------------------------------------------------------------

    def wait_until(self, condition, timeout: float, what: str) -> None:
        """Poll ``condition`` until it holds (a wait on state, never a guessed sleep)."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} within {timeout}s: {self.statuses()}")
            time.sleep(0.05)

    def statuses(self) -> dict[str, int]:
        rows = store_sql(self.db).execute("SELECT status, COUNT(*) AS n FROM events GROUP BY status").fetchall()
        return {r["status"]: r["n"] for r in rows}

    def wait_settled(self, timeout: float, *, expect_events: int = 0) -> dict[str, int]:
        """Until both sandboxes have delivered everything and no event is pending or running."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 5:
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled in {timeout}s: {self.statuses()}")
            delivered = self.zuora_sb.wait_for_callouts(0.2) and self.billing_sb.wait_for_deliveries(0.2)
            counts = self.statuses()
            busy = counts.get("pending", 0) + counts.get("running", 0)
            enough = sum(counts.values()) >= expect_events
            quiet = quiet + 1 if delivered and not busy and enough else 0
            time.sleep(0.1)
        return self.statuses()

    def zuora_state(self) -> dict:
        return requests.get(f"{self.zuora.url}/_sandbox/state", timeout=30).json()

    def billing_state(self) -> dict:
        return requests.get(f"{self.billing.url}/_sandbox/state", timeout=30).json()

    def zuora_token(self) -> str:
        return requests.post(f"{self.zuora.url}/oauth/token", timeout=10, data={
            "client_id": self.zuora_sb.client_id, "client_secret": self.zuora_sb.client_secret,
            "grant_type": "client_credentials"}).json()["access_token"]

    def admin(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}{path}", timeout=30,
                                headers={"Authorization": f"Bearer {self.admin_token}"}, **kwargs)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())
