"""All Zuora sandbox state behind one lock."""
from __future__ import annotations

import collections
import queue
import threading

from integration_sandbox import faults as faults_mod

from .callouts import CalloutSettings, CalloutsMixin, _Notification
from .common import REQUEST_LOG_SIZE, Clock
from .discounts import DEFAULT_BILLING_RULES
from .idempotency import IdempotencyMixin
from .oauth import TokensMixin
from .views import account_view, import_view, invoice_state_view


class ZuoraSandbox(TokensMixin, IdempotencyMixin, CalloutsMixin):
    """All sandbox state behind one lock; lives in ``app.extensions["zuora_sandbox"]``.

    What tests and the demo use: ``client_id``, ``client_secret`` (never in ``repr``), ``faults``
    (:class:`~integration_sandbox.faults.Faults`), ``wait_for_callouts(timeout)``, ``state()`` (the
    ``/_sandbox/state`` document), ``reset()``, ``revoke_tokens()`` and ``close()``.
    """

    def __init__(self, *, client_id: str, client_secret: str, token_lifetime: int, custom_fields: set[str],
                 callout: CalloutSettings, clock: Clock, faults: faults_mod.Faults,
                 invoice_custom_fields: set[str] = frozenset()):
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.custom_fields = custom_fields
        self.invoice_custom_fields = set(invoice_custom_fields)
        self.clock = clock
        self.faults = faults
        self.lock = threading.RLock()
        self.callout = callout
        self.tokens: dict[str, float] = {}   # access token -> expiry (clock seconds)
        self.tokens_issued = 0
        self._queue: queue.Queue[_Notification] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition(self.lock)
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._generation = 0
        self._clear()

    def __repr__(self) -> str:
        return f"ZuoraSandbox(client_id={self.client_id!r}, accounts={len(self.accounts)})"

    def _clear(self) -> None:
        self.accounts: dict[str, dict] = {}
        self.invoices: dict[str, dict] = {}
        self.credit_memos: dict[str, dict] = {}
        self.usage: list[dict] = []
        self.imports: dict[str, dict] = {}
        self.callouts: list[dict] = []
        self.requests: collections.deque[dict] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self.idempotency: dict[str, dict] = {}
        self.fail_next: dict | None = None
        self.lose_next: dict[str, dict] = {}  # path -> {"count", "mode", "status", "hold_seconds"}
        self.account_seq = 0
        self.invoice_seq = 0
        self.memo_seq = 0
        # The tenant's billing rules the sandbox models (integration_sandbox.zuora.discounts); a reset
        # restores the defaults, so one test's tenant never leaks into the next.
        self.billing_rules: dict[str, bool] = dict(DEFAULT_BILLING_RULES)

    def reset(self) -> None:
        """Forget all data, logs and idempotency keys, and restore the default billing rules; credentials,
        tokens and callout settings stay."""
        with self.lock:
            self._generation += 1
            self._clear()

    def now(self) -> float:
        return self.clock()

    # -- lookups -------------------------------------------------------------------------------------

    def find_account(self, key: str) -> dict | None:
        """By ID or number, as every Zuora ``*-key`` accepts either."""
        with self.lock:
            if key in self.accounts:
                return self.accounts[key]
            return next((a for a in self.accounts.values() if a["accountNumber"] == key), None)

    def find_invoice(self, key: str) -> dict | None:
        with self.lock:
            if key in self.invoices:
                return self.invoices[key]
            return next((i for i in self.invoices.values() if i["invoiceNumber"] == key), None)

    # -- inspection ----------------------------------------------------------------------------------

    def state(self) -> dict:
        with self.lock:
            return {
                "accounts": [account_view(a, self) for a in self.accounts.values()],
                "invoices": [invoice_state_view(i) for i in self.invoices.values()],
                "credit_memos": [dict(m) for m in self.credit_memos.values()],
                "usage": [dict(u) for u in self.usage],
                "imports": [import_view(i) for i in self.imports.values()],
                "callouts": [dict(c) for c in self.callouts],
                "tokens_issued": self.tokens_issued,
                "requests": [dict(r) for r in self.requests],
            }
