"""The whole system on one machine: both sandboxes and the service, wired together on free
localhost ports inside this process. ``integration demo`` runs on it, and so do the flow tests.

The service is configured exactly as a deployment would be (a ``Config`` naming the sandboxes'
URLs and the credentials they generated); the sandboxes send their callouts and signed events to
the service's real webhooks over HTTP.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import replace
from pathlib import Path

import requests

from integration import create_app
from integration.config import Config, Secret
from integration.flows import build_handlers
from integration.services import Services
from integration.worker.loop import Worker
from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox

CALLOUT_USERNAME = "zuora-callouts"


class LocalStack:
    """Start with ``start()`` (or ``with``); ``services``, ``zuora_url``, ``billing_url`` and
    ``service_url`` are then set. ``workers`` threads run the worker loop unless it is 0."""

    def __init__(self, workdir: str | Path, *, workers: int = 1, zuora_options: dict | None = None,
                 billing_options: dict | None = None, config_overrides: dict | None = None):
        self.workdir = Path(workdir)
        self.worker_count = workers
        self.zuora_options = zuora_options or {}
        self.billing_options = billing_options or {}
        self.config_overrides = config_overrides or {}
        self.callout_password = secrets.token_urlsafe(18)
        self.admin_token = secrets.token_urlsafe(32)
        self._servers: list[ServerThread] = []
        self._threads: list[threading.Thread] = []
        self.workers: list[Worker] = []

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        self.zuora_app = create_zuora_sandbox(callout_username=CALLOUT_USERNAME,
                                              callout_password=self.callout_password, **self.zuora_options)
        self.billing_app = create_billing_sandbox(**self.billing_options)
        self.zuora_sandbox = self.zuora_app.extensions["zuora_sandbox"]
        self.billing_sandbox = self.billing_app.extensions["billing_sandbox"]
        zuora_server = self._serve(self.zuora_app)
        billing_server = self._serve(self.billing_app)
        self.zuora_url, self.billing_url = zuora_server.url, billing_server.url

        self.workdir.mkdir(parents=True, exist_ok=True)
        config = Config(
            database_url=f"sqlite:///{self.workdir / 'integration.db'}",
            zuora_base_url=self.zuora_url,
            zuora_client_id=self.zuora_sandbox.client_id,
            zuora_client_secret=Secret(self.zuora_sandbox.client_secret),
            billing_base_url=self.billing_url,
            billing_api_token=Secret(self.billing_sandbox.api_token),
            billing_webhook_secret=Secret(self.billing_sandbox.webhook_secret),
            admin_token=Secret(self.admin_token),
            zuora_callout_username=CALLOUT_USERNAME,
            zuora_callout_password=Secret(self.callout_password),
        )
        self.config = replace(config, **self.config_overrides)
        self.services = Services.from_config(self.config)
        self.services.db.migrate()
        service_server = self._serve(create_app(services=self.services))
        self.service_url = service_server.url

        requests.post(f"{self.zuora_url}/_sandbox/config", timeout=10,
                      json={"callout_url": f"{self.service_url}/webhooks/zuora"}).raise_for_status()
        requests.post(f"{self.billing_url}/_sandbox/config", timeout=10,
                      json={"webhook_url": f"{self.service_url}/webhooks/billing"}).raise_for_status()
        for _ in range(self.worker_count):
            self.start_worker()
        return self

    def _serve(self, app) -> ServerThread:
        server = ServerThread(app).start()
        self._servers.append(server)
        return server

    def start_worker(self, **options) -> Worker:
        """Another worker loop over the same store (each with its own clients, as a process would)."""
        services = Services(config=self.services.config, db=self.services.db, inbox=self.services.inbox)
        worker = Worker(self.services.inbox, build_handlers(services), poll_interval=0.05, **options)
        thread = threading.Thread(target=worker.run, daemon=True, name=f"worker-{len(self.workers)}")
        thread.start()
        self.workers.append(worker)
        self._threads.append(thread)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        for server in reversed(self._servers):
            server.stop()
        for sandbox in (getattr(self, "zuora_sandbox", None), getattr(self, "billing_sandbox", None)):
            if sandbox is not None and hasattr(sandbox, "close"):
                sandbox.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- waiting -------------------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until the sandboxes have delivered every callout and event and the inbox has nothing due.

        Settled means: three consecutive checks, 50 ms apart, find no delivery queued and no event
        pending (now) or running — so work that one step triggers in the next is not missed.
        """
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stack did not settle within {timeout}s: {self.inbox_summary()}")
            delivered = self.zuora_sandbox.wait_for_callouts(timeout=0.5) and \
                self.billing_sandbox.wait_for_deliveries(timeout=0.5)
            busy = self.services.inbox.busy(within=1.0)
            quiet = quiet + 1 if delivered and not busy else 0
            time.sleep(0.05)

    def inbox_summary(self) -> dict:
        return self.services.inbox.status_counts()

    # -- convenience over the sandboxes' HTTP control API ----------------------------------------------

    def zuora_state(self) -> dict:
        return requests.get(f"{self.zuora_url}/_sandbox/state", timeout=10).json()

    def billing_state(self) -> dict:
        return requests.get(f"{self.billing_url}/_sandbox/state", timeout=10).json()

    def zuora_api(self) -> requests.Session:
        """A session holding a Zuora sandbox token, for acting as a Zuora user would."""
        token = requests.post(f"{self.zuora_url}/oauth/token", timeout=10, data={
            "client_id": self.zuora_sandbox.client_id, "client_secret": self.zuora_sandbox.client_secret,
            "grant_type": "client_credentials"}).json()["access_token"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        return session

    def billing_api(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.billing_sandbox.api_token}"
        return session

    def admin(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.admin_token}"
        return session
