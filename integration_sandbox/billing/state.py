"""All billing sandbox state behind one lock."""
from __future__ import annotations

import hmac
import itertools
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from integration_sandbox import faults as faults_module

from .accounts import AccountsMixin
from .common import REQUEST_LOG_SIZE, ApiError
from .customers import CustomersMixin
from .invoicing import InvoicingMixin
from .schemas import ConfigSchema, SandboxAccountSchema, load
from .settings import SettingsMixin
from .webhooks import WebhooksMixin


class BillingSandbox(CustomersMixin, AccountsMixin, SettingsMixin, InvoicingMixin, WebhooksMixin):
    """All state of one billing sandbox, behind one lock, plus the webhook delivery thread.

    Routes call the public methods; tests and the demo read ``api_token``, ``webhook_secret`` and
    ``faults`` and call :meth:`wait_for_deliveries`.
    """

    def __init__(self, *, api_token: str, webhook_url: str | None, webhook_secret: str,
                 webhook_retry_schedule: Sequence[float], faults: faults_module.Faults,
                 clock: Callable[[], datetime]):
        self._lock = threading.RLock()
        self._cv = threading.Condition(self._lock)  # same lock: the one lock guards state and queue
        self._clock = clock
        self.faults = faults
        self._api_token = api_token
        self._webhook_url = webhook_url
        self._webhook_secret = webhook_secret
        self._extra_secrets: list[str] = []
        self._retry_schedule = [Decimal(str(s)) for s in webhook_retry_schedule]
        self._emit_api_events = True
        self._queue: list[tuple[float, int, str, int]] = []  # (due monotonic, seq, event id, round)
        self._seq = itertools.count()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._clear()

    def __repr__(self) -> str:
        return f"<BillingSandbox customers={len(self._customers)} events={len(self._events)}>"

    # -- configuration ---------------------------------------------------------------------------

    @property
    def api_token(self) -> str:
        return self._api_token

    @property
    def webhook_secret(self) -> str:
        with self._lock:
            return self._webhook_secret

    @property
    def webhook_url(self) -> str | None:
        with self._lock:
            return self._webhook_url

    def token_matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self._api_token.encode())

    def configure(self, **settings: Any) -> dict:
        """Change ``webhook_url``, ``webhook_secret``, ``extra_webhook_secrets`` (also sign with these,
        to test rotation), ``webhook_retry_schedule`` or ``emit_api_events`` at runtime.

        Validated like ``POST /_sandbox/config``: an invalid setting raises :class:`ApiError` (400)
        and nothing changes. Returns :meth:`config_view`.
        """
        schedule = settings.get("webhook_retry_schedule")
        if isinstance(schedule, (list, tuple)):
            settings["webhook_retry_schedule"] = [Decimal(str(s)) if isinstance(s, float) else s
                                                  for s in schedule]
        settings = load(ConfigSchema(), settings)
        with self._lock:
            if "webhook_url" in settings:
                self._webhook_url = settings["webhook_url"]
            if "webhook_secret" in settings:
                self._webhook_secret = settings["webhook_secret"]
            if "extra_webhook_secrets" in settings:
                self._extra_secrets = list(settings["extra_webhook_secrets"])
            if "webhook_retry_schedule" in settings:
                self._retry_schedule = list(settings["webhook_retry_schedule"])
            if "emit_api_events" in settings:
                self._emit_api_events = settings["emit_api_events"]
            return self.config_view()

    def config_view(self) -> dict:
        """The configuration without secret values."""
        with self._lock:
            return {"webhook_url": self._webhook_url,
                    "webhook_retry_schedule": list(self._retry_schedule),
                    "emit_api_events": self._emit_api_events,
                    "webhook_secret_count": 1 + len(self._extra_secrets)}

    # -- lifecycle -------------------------------------------------------------------------------

    def _clear(self) -> None:
        self._customers: dict[str, dict] = {}
        self._accounts: dict[str, dict] = {}
        self._settings: dict[str, dict] = {}
        # Indexes of _settings, kept by SettingsMixin._store_setting / _unstore_setting.
        self._setting_keys: set[tuple[str, str, str, str]] = set()
        self._entity_settings: dict[tuple[str, str], dict[str, dict]] = {}
        self._invoices: dict[str, dict] = {}
        self._events: dict[str, dict] = {}
        self._requests: deque[dict] = deque(maxlen=REQUEST_LOG_SIZE)

    def reset(self) -> None:
        """Forget every object, event, queued delivery and logged request; reset the faults."""
        with self._cv:
            self._clear()
            self._queue.clear()
            self._cv.notify_all()
        self.faults.reset()

    def close(self) -> None:
        """Stop the delivery thread (queued deliveries are dropped)."""
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def wait_for_deliveries(self, timeout: float = 10.0) -> bool:
        """Block until no event is queued, waiting for a retry or in flight; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._queue and self._in_flight == 0, timeout)

    # -- inspection ------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The sandbox clock (aware UTC)."""
        return self._clock()

    def log_request(self, entry: dict) -> None:
        with self._lock:
            self._requests.append(entry)

    def state(self) -> dict:
        """Everything, for ``GET /_sandbox/state``: objects in API shape, events, requests, config."""
        with self._lock:
            events = [{**{k: v for k, v in e.items() if k not in ("body", "round")},
                       "attempts": list(e["attempts"])} for e in self._events.values()]
            return {"customers": [self.customer_view(c) for c in self._customers.values()],
                    "accounts": [self.account_view(a) for a in self._accounts.values()],
                    "settings": [self._setting_view(s) for s in self._settings.values()],
                    "invoices": list(self._invoices.values()),
                    "events": events, "requests": list(self._requests),
                    "config": self.config_view()}

    def sandbox_accounts(self, payload: Any) -> dict:
        """``POST /_sandbox/accounts``: ``{"customer", "account"?}`` or ``{"account": {..customerId}}``."""
        data = load(SandboxAccountSchema(), payload)
        if "customer" in data:
            customer = dict(data["customer"])
            if "account" in data:
                customer["account"] = data["account"]
            return self.create_customer(customer, via_api=False)
        if "account" in data:
            return self.create_account(data["account"], via_api=False)
        raise ApiError(400, "Give customer (and optionally account), or account with customerId")
