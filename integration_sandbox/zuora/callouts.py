"""Account-created callouts sent the way Zuora sends them (see the package docstring)."""
from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal

import requests

from .common import (
    CALLOUT_TIMEOUT,
    CALLOUT_WORKERS,
    HMAC_ALGORITHMS,
    HMAC_FORMATS,
    _is_int,
    _utc_iso,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------
# callouts
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalloutSettings:
    """How account-created callouts are sent; ``repr`` never shows the password or HMAC secret."""

    url: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    preemptive: bool = False
    hmac_secret: str | None = field(default=None, repr=False)
    hmac_header: str = "X-Zuora-Signature"
    hmac_algorithm: str = "SHA-256"
    hmac_format: str = "BASE64"
    retry_interval: float = 1.0
    attempts: int = 3

    def validate(self) -> CalloutSettings:
        if self.url is not None and (not isinstance(self.url, str) or not re.match(r"^https?://", self.url)
                                     or len(self.url) > 1000):
            raise ValueError("callout_url must be an http(s) URL of at most 1000 characters")
        for name in ("username", "password", "hmac_secret"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"callout_{name} must be a string")
        if self.username is not None and ":" in self.username:
            raise ValueError("callout_username may not contain ':'")
        if not isinstance(self.preemptive, bool):
            raise ValueError("callout_preemptive must be true or false")
        if not isinstance(self.hmac_header, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,100}", self.hmac_header):
            raise ValueError("callout_hmac_header must be a header name")
        if self.hmac_algorithm not in HMAC_ALGORITHMS:
            raise ValueError(f"callout_hmac_algorithm must be one of {', '.join(HMAC_ALGORITHMS)}")
        if self.hmac_format not in HMAC_FORMATS:
            raise ValueError("callout_hmac_format must be BASE64 or HEX")
        if (not isinstance(self.retry_interval, (int, float, Decimal)) or isinstance(self.retry_interval, bool)
                or not 0 <= self.retry_interval <= 86400):
            raise ValueError("callout_retry_interval must be a number of seconds 0..86400")
        if not _is_int(self.attempts) or not 1 <= self.attempts <= 5:
            raise ValueError("callout_attempts must be an integer 1..5 (Zuora's maximum)")
        return replace(self, retry_interval=float(self.retry_interval))

    def public(self) -> dict:
        """For ``GET /_sandbox/config``: secrets reported only as set or not."""
        return {"callout_url": self.url, "callout_username": self.username,
                "callout_password_set": self.password is not None, "callout_preemptive": self.preemptive,
                "callout_hmac_secret_set": self.hmac_secret is not None, "callout_hmac_header": self.hmac_header,
                "callout_hmac_algorithm": self.hmac_algorithm, "callout_hmac_format": self.hmac_format,
                "callout_retry_interval": self.retry_interval, "callout_attempts": self.attempts}


def sign_callout(settings: CalloutSettings, body: bytes) -> str:
    """The HMAC of the raw body in the configured algorithm and output format."""
    if settings.hmac_secret is None:
        raise ValueError("callout HMAC signing is on but no hmac_secret is set")
    digest = hmac.new(settings.hmac_secret.encode(), body, HMAC_ALGORITHMS[settings.hmac_algorithm]).digest()
    return base64.b64encode(digest).decode() if settings.hmac_format == "BASE64" else digest.hex()


def _retryable_status(status: int) -> bool:
    """Zuora retries only on 1xx, 403, 408, 429 and 5xx (and connection errors)."""
    return 100 <= status < 200 or status in (403, 408, 429) or status >= 500


@dataclass
class _Notification:
    notification_id: str
    account_id: str
    settings: CalloutSettings
    manual: bool
    generation: int

class CalloutsMixin:
    """The callout queue and workers of :class:`~integration_sandbox.zuora.state.ZuoraSandbox`."""

    # -- callouts ------------------------------------------------------------------------------------

    def queue_callout(self, account_id: str, *, manual: bool = False) -> str | None:
        """Queue an account-created notification; None when no callout URL is configured."""
        with self.lock:
            settings = self.callout
            if settings.url is None:
                return None
            note = _Notification(uuid.uuid4().hex, account_id, settings, manual, self._generation)
            self._pending += 1
            self._ensure_workers()
        self._queue.put(note)
        return note.notification_id

    def wait_for_callouts(self, timeout: float = 10.0) -> bool:
        """Block until every queued callout has been delivered or given up; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self) -> None:
        """Stop the callout workers (pending retries are abandoned)."""
        self._stop.set()
        for _ in self._workers:
            self._queue.put(None)  # type: ignore[arg-type]

    def _ensure_workers(self) -> None:
        self._workers = [w for w in self._workers if w.is_alive()]
        while len(self._workers) < CALLOUT_WORKERS and not self._stop.is_set():
            worker = threading.Thread(target=self._work, name="zuora-sandbox-callouts", daemon=True)
            worker.start()
            self._workers.append(worker)

    def _work(self) -> None:
        while not self._stop.is_set():
            note = self._queue.get()
            if note is None:
                return
            try:
                self._deliver(note)
            except Exception:  # a bug here must not kill the worker or hang wait_for_callouts
                log.exception("callout delivery crashed")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, note: _Notification) -> None:
        """One notification: up to ``attempts`` deliveries, each with Zuora's Basic-challenge handshake."""
        s = note.settings
        body = json.dumps({"AccountId": note.account_id}, separators=(",", ":")).encode()
        send_auth = s.preemptive and s.username is not None
        for attempt in range(1, s.attempts + 1):
            if self._stale(note):
                return
            status, outcome_headers = self._attempt(note, body, attempt, send_auth)
            if (status == 401 and not send_auth and s.username is not None
                    and "basic" in outcome_headers.get("www-authenticate", "").lower()):
                self._log_outcome(note, "challenged")
                send_auth = True
                status, outcome_headers = self._attempt(note, body, attempt, send_auth)
            if status == 200:
                self._log_outcome(note, "delivered")
                return
            if status is not None and not _retryable_status(status):
                self._log_outcome(note, "failed")
                return
            if attempt == s.attempts:
                self._log_outcome(note, "failed")
                return
            self._log_outcome(note, "retry")
            if self._stop.wait(s.retry_interval):
                return

    def _stale(self, note: _Notification) -> bool:
        with self.lock:
            return note.generation != self._generation

    def _attempt(self, note: _Notification, body: bytes, attempt: int, send_auth: bool) -> tuple[int | None, dict]:
        s = note.settings
        request_id = uuid.uuid4().hex
        headers = {"Content-Type": "application/json", "Zuora-Request-Id": request_id,
                   "Zuora-Notification-Id": note.notification_id,
                   "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}",
                   "User-Agent": "Zuora-Callout-Sandbox/1.0"}
        if send_auth:
            token = base64.b64encode(f"{s.username}:{s.password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if s.hmac_secret is not None:
            headers[s.hmac_header] = sign_callout(s, body)
        entry = {"notification_id": note.notification_id, "account_id": note.account_id, "attempt": attempt,
                 "request_id": request_id, "url": s.url, "authorization": "basic" if send_auth else None,
                 "hmac": s.hmac_secret is not None, "manual": note.manual, "at": _utc_iso(self.now()),
                 "status": None, "error": None, "outcome": None}
        response_headers: dict = {}
        try:
            resp = requests.post(s.url, data=body, headers=headers, timeout=CALLOUT_TIMEOUT, allow_redirects=False)
            entry["status"] = resp.status_code
            response_headers = {k.lower(): v for k, v in resp.headers.items()}
        except requests.RequestException as exc:
            entry["error"] = type(exc).__name__
        with self.lock:
            if note.generation == self._generation:
                self.callouts.append(entry)
        return entry["status"], response_headers

    def _log_outcome(self, note: _Notification, outcome: str) -> None:
        with self.lock:
            for entry in reversed(self.callouts):
                if entry["notification_id"] == note.notification_id:
                    entry["outcome"] = outcome
                    return
