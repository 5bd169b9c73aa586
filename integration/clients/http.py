"""The client both APIs share: one retry loop around one metered, paced and bounded exchange.

A flow must be able to trust a single client call: it either did what was asked, or raised an
error from ``integration.domain.errors`` that says whether trying again could help. Everything that
decides *that* without knowing which API is on the other end is shared, so the Zuora and the
billing client differ only in how they authenticate and how they read an answer. The shared
parts live one job per module:

- here, ``RemoteClient._call``, the retry loop. The client's ``interpret`` callback turns a
  response into a result or raises; a ``TransientError`` from it (or from the transport) is
  retried with exponential backoff and full jitter (``Backoff``) — or, when the remote said how
  long to wait, after exactly that long (``wait_hint``: ``Retry-After`` first, else
  ``RateLimit-Reset`` once the budget is spent; CONTRACT §5) — within ``max_attempts`` and
  ``max_retry_seconds``; after that the ``TransientError`` reaches the caller, still carrying
  the remote's wait, so the inbox reschedules the event. A 401 gets one fresh credential and
  one repeat. IDs and header values a caller passes are checked here before they reach a URL.
- ``integration.clients.pacing``: the rate-limit headers read, and ``Pacer``, which waits for the
  reset before the next call instead of spending a call on a refusal; a semaphore here caps
  calls in flight.
- ``integration.clients.bodies``: bodies streamed and capped at ``MAX_BODY_BYTES``, JSON read and
  written with ``Decimal``.
- ``integration.clients.answers``: which statuses are transient, and the fields an answer must hold.
- Each attempt is counted and timed in ``integration.metrics`` under the endpoint *template*
  (never a raw ID, which would explode label cardinality) and logged as one line on
  ``integration.remote``.
- Waiting goes through the injected ``clock``/``sleep`` so tests check the waits without waiting.

Secrets never leave through here: messages built from remote bodies are scrubbed of every
credential the client knows, and nothing logs headers or bodies.
"""
from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests

from integration import metrics
from integration.clients.bodies import parse_json, read_body
from integration.clients.pacing import Pacer
from integration.context import current_event_id
from integration.domain.backoff import Backoff
from integration.domain.errors import (
    AuthFailed,
    InvalidData,
    SyncError,
    TransientError,
)

T = TypeVar("T")

log = logging.getLogger("integration.remote")

MAX_MESSAGE_CHARS = 500
"""Remote messages are cut to this length before they reach an exception (and the failure list)."""

_PATH_PARAM_MAX = 255
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def path_param(name: str, value: Any) -> str:
    """A caller's ID made safe for a URL path segment.

    IDs reach us from webhooks, so they are hostile until proven otherwise: "..", a slash or a
    control character would address another resource, and an empty one another endpoint.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidData(name, "must be a non-empty string")
    if len(value) > _PATH_PARAM_MAX:
        raise InvalidData(name, f"longer than {_PATH_PARAM_MAX} characters")
    if value in (".", "..") or _CONTROL_CHARS.search(value):
        raise InvalidData(name, "is not a valid identifier")
    return quote(value, safe="")


def header_value(name: str, value: Any, *, max_length: int) -> str:
    """Validate a caller-supplied header value: printable ASCII, bounded, so it cannot split headers."""
    if not isinstance(value, str) or not value:
        raise InvalidData(name, "must be a non-empty string")
    if len(value) > max_length:
        raise InvalidData(name, f"longer than {max_length} characters")
    if not all(" " <= ch <= "~" for ch in value):
        raise InvalidData(name, "must be printable ASCII")
    return value


class RemoteClient:
    """Shared machinery of ``ZuoraClient`` and ``BillingClient``; see the module docstring.

    Subclasses set ``api`` (the metrics/log label), implement ``_auth_headers`` and may override
    ``_refresh_auth`` (may a 401 be retried with new credentials?), ``_default_headers`` and
    ``_secrets`` (values to scrub from messages).
    """

    api = "remote"

    def __init__(self, base_url: str, *, timeout: float | tuple[float, float] = (5, 30),
                 max_concurrency: int = 40, max_retry_seconds: float = 60.0, max_attempts: int = 6,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 session: requests.Session | None = None, rng: random.Random | None = None,
                 pace_threshold: int = 0):
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{type(self).__name__}: base_url must be an http(s) URL")
        if max_concurrency < 1 or max_attempts < 1 or max_retry_seconds < 0:
            raise ValueError(f"{type(self).__name__}: max_concurrency and max_attempts must be ≥ 1")
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._clock = clock
        self._sleep = sleep
        self._session = session or requests.Session()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._backoff = Backoff(base_seconds=0.5, cap_seconds=30.0)
        self._rng = rng or random.Random()  # noqa: S311 - retry jitter, not a secret
        self._pacer = Pacer(clock=clock, sleep=sleep, max_wait=max_retry_seconds, threshold=pace_threshold)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- hooks for subclasses

    def _auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def _refresh_auth(self, used: Mapping[str, str]) -> bool:
        """After a 401: drop the credential ``used`` and say whether one repeat may help."""
        return False

    def _default_headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def _secrets(self) -> Iterable[str]:
        return ()

    # -- helpers for subclasses

    def clean(self, text: Any) -> str:
        """A remote's text made fit for an exception: scrubbed of our secrets and bounded in length."""
        message = str(text)
        for secret in sorted(self._secrets(), key=len, reverse=True):  # longest first: no half-scrubbed prefix
            if secret:
                message = message.replace(secret, "***")
        message = _CONTROL_CHARS.sub(" ", message)
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[:MAX_MESSAGE_CHARS] + "…"
        return message

    def url(self, template: str, **params: Any) -> str:
        """The full URL for an endpoint template such as ``/v1/accounts/{key}``, params validated and quoted."""
        return self.base_url + template.format(**{k: path_param(k, v) for k, v in params.items()})

    # -- the retry loop

    def _call(self, method: str, endpoint: str, url: str, interpret: Callable[[requests.Response], T], *,
              headers: Mapping[str, str] | None = None, **request_kwargs: Any) -> T:
        """Send until ``interpret`` accepts the answer, a permanent error is raised, or the budget is spent.

        ``endpoint`` is the template used for metrics and logs; ``url`` the real address.
        ``request_kwargs`` (``params``, ``data``, ``files``) must be replayable on every attempt.
        """
        started = self._clock()
        failures = 0
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            try:
                auth = self._auth_headers()
                resp = self._send(method, endpoint, url, attempt,
                                  headers={**self._default_headers(), **(headers or {}), **auth},
                                  **request_kwargs)
                if resp.status_code == 401:
                    if not refreshed and self._refresh_auth(auth):
                        refreshed = True
                        continue
                    detail = self._short_message(resp)
                    raise AuthFailed(f"{self.api} {method} {endpoint}: credentials rejected "
                                     f"(HTTP 401{': ' + detail if detail else ''})")
                return interpret(resp)
            except TransientError as exc:
                failures += 1
                delay = self._backoff.delay(failures - 1, self._rng, exc.retry_after)
                elapsed = self._clock() - started
                if failures >= self._max_attempts or elapsed + delay > self._max_retry_seconds:
                    raise TransientError(f"{exc.message} (gave up after {attempt} attempt"
                                         f"{'s' if attempt != 1 else ''})", retry_after=exc.retry_after) from exc
                self._sleep(delay)

    def _short_message(self, resp: requests.Response) -> str:
        try:
            body = parse_json(resp)
        except ValueError:
            return ""
        if isinstance(body, Mapping) and isinstance(body.get("message"), str):
            return self.clean(body["message"])
        return ""

    def _send(self, method: str, endpoint: str, url: str, attempt: int, **kwargs: Any) -> requests.Response:
        """One metered, logged, paced and bounded HTTP exchange; transport trouble becomes ``TransientError``.

        The body is streamed and capped at ``MAX_BODY_BYTES`` (``read_body``), so no remote can make
        us hold more than that in memory.
        """
        self._pacer.wait_turn()
        where = f"{self.api} {method} {endpoint}"
        status = "error"
        started = time.perf_counter()
        try:
            with self._slots:  # held while the body streams in: the connection is still in use
                resp = self._session.request(method, url, timeout=self._timeout, allow_redirects=False,
                                             stream=True, **kwargs)
                status = str(resp.status_code)
                self._pacer.observe(resp.headers)  # the headers hold even if the body then fails
                read_body(resp, where)
        except requests.Timeout as exc:
            status = "timeout"
            raise TransientError(f"{where}: timed out ({type(exc).__name__})") from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError) as exc:
            status = "connection_error"
            raise TransientError(f"{where}: connection failed ({type(exc).__name__})") from exc
        except requests.RequestException as exc:  # a request we could not even form: retrying won't help
            raise SyncError(f"{where}: request could not be sent ({type(exc).__name__})") from exc
        finally:
            self._record(method, endpoint, status, time.perf_counter() - started, attempt)
        return resp

    def _record(self, method: str, endpoint: str, status: str, seconds: float, attempt: int) -> None:
        metrics.REMOTE_CALLS.labels(self.api, method, endpoint, status).inc()
        metrics.REMOTE_LATENCY.labels(self.api, method, endpoint).observe(seconds)
        if status == "429":
            metrics.REMOTE_RATE_LIMITED.labels(self.api).inc()
        ok = status.isdigit() and status.startswith("2")
        duration_ms = round(seconds * 1000)
        log.log(logging.INFO if ok else logging.WARNING, "%s %s %s -> %s in %d ms (attempt %d)",
                self.api, method, endpoint, status, duration_ms, attempt,
                extra={"api": self.api, "method": method, "endpoint": endpoint, "status": status,
                       "duration_ms": duration_ms, "attempt": attempt, "event_id": current_event_id.get()})
