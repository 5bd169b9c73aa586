"""What both API clients need from HTTP: one retry loop, pacing, metrics, logs and validation.

A flow must be able to trust a single client call: it either did what was asked, or raised an
error from ``integration.domain.errors`` that says whether trying again could help. Everything that
decides *that* without knowing which API is on the other end lives here, so the Zuora and the
billing client differ only in how they authenticate and how they read an answer:

- ``RemoteClient._call`` is the retry loop. The client's ``interpret`` callback turns a response
  into a result or raises; a ``TransientError`` from it (or from the transport) is retried with
  exponential backoff and full jitter — or, when the remote said how long to wait, after exactly
  that long (``wait_hint``: ``Retry-After`` first, else ``RateLimit-Reset`` once the budget is
  spent; CONTRACT §5) — within ``max_attempts`` and ``max_retry_seconds``; after that the
  ``TransientError`` reaches the caller, still carrying the remote's wait, so the inbox
  reschedules the event. A 401 gets one fresh credential and one repeat.
- ``Pacer`` reads ``RateLimit-*`` and ``Concurrency-Limit-Remaining`` and waits for the reset
  before the next call instead of spending a call on a refusal (``Retry-After`` first here too);
  a semaphore caps calls in flight.
- Response bodies are streamed and capped at ``MAX_BODY_BYTES`` (``read_body``).
- Each attempt is counted and timed in ``integration.metrics`` under the endpoint *template*
  (never a raw ID, which would explode label cardinality) and logged as one line on
  ``integration.remote``.
- Waiting goes through the injected ``clock``/``sleep`` so tests check the waits without waiting.

Secrets never leave through here: messages built from remote bodies are scrubbed of every
credential the client knows, and nothing logs headers or bodies.
"""
from __future__ import annotations

import decimal
import email.utils
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests

from integration import metrics
from integration.context import current_event_id
from integration.domain.backoff import Backoff
from integration.domain.errors import (
    AuthFailed,
    InvalidData,
    MalformedResponse,
    SyncError,
    TransientError,
)

T = TypeVar("T")

log = logging.getLogger("integration.remote")

MAX_HINT_SECONDS = 86_400.0
"""Longest wait we accept from a remote's header; a hostile or broken value can't park an event for years."""

MAX_MESSAGE_CHARS = 500
"""Remote messages are cut to this length before they reach an exception (and the failure list)."""

MAX_BODY_BYTES = 10 * 1024 * 1024
"""Largest response body read from a remote (10 MiB, after any Content-Encoding is undone).

Our largest legitimate answers (a page of 99 accounts, a 50-setting page, an invoice with its
items) are a few hundred KiB; a body past this is a broken proxy, a runaway listing or a
compression bomb, and reading it whole would let one remote exhaust a worker's memory.
"""

_BODY_CHUNK_BYTES = 64 * 1024

_PATH_PARAM_MAX = 255
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


# --------------------------------------------------------------------------- header parsing

def parse_number(value: str | None) -> float | None:
    """The first number in a header value, or None when absent or unreadable.

    ``RateLimit-Remaining`` may be a plain number or a list (``"49999, 2249999;w=3600"``); the
    smallest listed value is the one that runs out first, so that is the one returned.
    """
    if value is None:
        return None
    numbers = []
    for item in str(value).split(","):
        head = item.split(";", 1)[0].strip()
        try:
            number = float(head)
        except ValueError:
            continue
        if math.isfinite(number):
            numbers.append(number)
    return min(numbers) if numbers else None


def parse_reset(value: str | None, *, wall_clock: Callable[[], float] = time.time) -> float | None:
    """Seconds until ``RateLimit-Reset``; an epoch timestamp (some APIs send one) is converted."""
    number = parse_number(value)
    if number is None:
        return None
    if number > 1_000_000_000:
        number = number - wall_clock()
    return _clamp(number)


def parse_retry_after(value: str | None, *, wall_clock: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``Retry-After`` (RFC 9110: delay-seconds or an HTTP-date)."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return _clamp(float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return _clamp(when.timestamp() - wall_clock())


def _clamp(seconds: float) -> float | None:
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_HINT_SECONDS)


def wait_hint(headers: Mapping[str, str]) -> float | None:
    """The wait a response asked for, by the IETF rate-limit headers draft's precedence (CONTRACT §5).

    ``Retry-After``, when present and readable, *is* the wait: the draft says it "MUST take
    precedence" over the RateLimit fields, and Zuora's concurrency refusals (category 70) name it.
    Without it, ``RateLimit-Reset`` is the wait only when ``RateLimit-Remaining`` says the budget is
    spent (Zuora's own 429 sample carries ``ratelimit-*`` and no ``Retry-After``); a reset with
    budget left is when the window rolls over, not a request to wait.
    """
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    remaining = parse_number(headers.get("RateLimit-Remaining"))
    if remaining is not None and remaining <= 0:
        return parse_reset(headers.get("RateLimit-Reset"))
    return None


# --------------------------------------------------------------------------- pacing and backoff

class Pacer:
    """Holds the next call back until the remote's rate or concurrency window reopens.

    Zuora counts refused calls against the limit too, so spending one call to learn "429" makes
    things worse; waiting for the window to reopen once ``RateLimit-Remaining`` hits the threshold
    does not. ``RateLimit-Reset`` comes in whole seconds, rounded up, so one reading may put the
    window's end up to a second late (a 1 s window then idles half the time). Every response of a
    window gives another upper bound (its arrival time + its reset), and the earliest of them is
    the tightest: the pacer resumes there — never before the window really ends, barely after.
    ``Concurrency-Limit-Remaining`` is refreshed every second, so 0 there means "wait a second".
    A response carrying ``Retry-After`` overrides both, as in ``wait_hint``: the pacer then resumes
    exactly that long after it, however far off ``RateLimit-Reset`` is (IETF draft: Retry-After
    "MUST take precedence"), so the pacer never holds a call longer than the server asked.
    A wait longer than ``max_wait`` is not slept: it becomes a ``TransientError`` so the inbox
    reschedules the event rather than parking a worker thread.
    """

    CONCURRENCY_WINDOW = 1.0

    def __init__(self, *, clock: Callable[[], float], sleep: Callable[[float], None], max_wait: float,
                 threshold: int = 0):
        self._clock = clock
        self._sleep = sleep
        self._max_wait = max_wait
        self._threshold = threshold
        self._lock = threading.Lock()
        self._window_end: float | None = None
        self._last_remaining: float | None = None
        self._rate_resume_at: float | None = None
        self._concurrency_resume_at: float | None = None

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn the remaining budget from a response's headers."""
        now = self._clock()
        retry_after = parse_retry_after(headers.get("Retry-After"))
        remaining = parse_number(headers.get("RateLimit-Remaining"))
        reset = parse_reset(headers.get("RateLimit-Reset"))
        concurrency = parse_number(headers.get("Concurrency-Limit-Remaining"))
        with self._lock:
            if reset is not None:
                self._track_window(now, now + reset, remaining)
            if remaining is not None:
                self._last_remaining = remaining
            if retry_after is not None:  # the server said how long: that, not the reset, is the wait
                self._rate_resume_at = now + retry_after
                self._concurrency_resume_at = None
                return
            if remaining is not None:
                if remaining <= self._threshold and self._window_end is not None:
                    self._rate_resume_at = max(self._rate_resume_at or 0.0, self._window_end)
                elif remaining > self._threshold:
                    self._rate_resume_at = None
            if concurrency is not None:
                if concurrency <= 0:
                    self._concurrency_resume_at = now + self.CONCURRENCY_WINDOW
                else:
                    self._concurrency_resume_at = None

    def _track_window(self, now: float, end: float, remaining: float | None) -> None:
        new_window = (self._window_end is None or now >= self._window_end
                      or (remaining is not None and self._last_remaining is not None
                          and remaining > self._last_remaining))
        self._window_end = end if new_window else min(self._window_end, end)

    def wait_turn(self) -> None:
        """Sleep until the window reopens, or raise ``TransientError`` when that is too far off."""
        with self._lock:
            targets = [t for t in (self._rate_resume_at, self._concurrency_resume_at) if t is not None]
        if not targets:
            return
        wait = max(targets) - self._clock()
        if wait <= 0:
            return
        if wait > self._max_wait:
            raise TransientError(f"rate limit exhausted; the window reopens in {wait:.0f} s", retry_after=wait)
        self._sleep(wait)


# --------------------------------------------------------------------------- bodies

def read_body(resp: requests.Response, where: str, *, limit: int = MAX_BODY_BYTES) -> None:
    """Read a streamed response's body into ``resp.content``, never holding more than ``limit`` bytes.

    The body is pulled in chunks (decoded, so a gzip bomb counts at its real size) and the read
    stops at the first byte past the cap; a ``Content-Length`` already past it is refused unread.
    Past the cap the answer is unusable, and the error says which call it was:

    - ``MalformedResponse`` (permanent, ``UNKNOWN`` on the failure list) as a rule. A repeat would
      fetch the same oversized body again — an Idempotency-Key replays a stored answer verbatim —
      and spend rate budget each time (Zuora counts every call), so retrying cannot help; an
      operator must look at what the remote sends.
    - ``TransientError`` when the status itself is transient (408, 429, 5xx): the status already
      says "try again" and carries the wait; the body would only have added a detail, and a
      gateway's outsized error page must not turn a passing outage into a permanent failure.

    ``requests`` offers no public way to hand a body read this way back to ``Response.content``,
    so it is stored where ``content`` keeps it (``_content``), as ``requests`` itself does.
    """
    declared = parse_number(resp.headers.get("Content-Length"))
    encoded = resp.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
    if declared is not None and not encoded and declared > limit:
        resp.close()
        raise _oversized(resp, where, limit)
    if resp.raw is None:  # a transport adapter that hands over a finished body (no stream to bound)
        if len(resp.content) > limit:
            raise _oversized(resp, where, limit)
        return
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(_BODY_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise _oversized(resp, where, limit)
        chunks.append(chunk)
    resp._content = b"".join(chunks)
    resp._content_consumed = True


def _oversized(resp: requests.Response, where: str, limit: int) -> SyncError:
    message = f"{where}: response body larger than {limit} bytes; not read (HTTP {resp.status_code})"
    if is_transient_status(resp.status_code):
        return TransientError(message, retry_after=wait_hint(resp.headers))
    return MalformedResponse(message)


def parse_json(resp: requests.Response) -> Any:
    """The response body as JSON with every decimal number a ``Decimal`` (money never goes through float).

    Raises ``ValueError`` when the body is not JSON; callers decide whether that is malformed.
    """
    try:
        return json.loads(resp.content or b"", parse_float=decimal.Decimal)
    except RecursionError as exc:  # absurdly nested input is as useless as broken input
        raise ValueError("JSON nested too deeply") from exc


def dumps_json(value: Any) -> bytes:
    """JSON for a request body, writing ``Decimal`` as an exact JSON number.

    ``json.dumps`` refuses ``Decimal`` and converting to float would lose cents, so the few JSON
    types are written here by hand; NaN/Infinity are refused because no API accepts them.
    """
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if value is None or isinstance(value, (bool, str)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise InvalidData("body", f"{value} is not a number a remote API accepts")
        return format(value, "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidData("body", f"{value} is not a number a remote API accepts")
        return repr(value)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidData("body", f"object key {key!r} is not a string")
            items.append(f"{json.dumps(key, ensure_ascii=False)}:{_encode(item)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    raise InvalidData("body", f"a {type(value).__name__} cannot be sent as JSON")


def require(body: Any, path: str, where: str) -> Any:
    """``body[a][b]`` for ``path`` "a.b", or ``MalformedResponse`` naming the call and the field."""
    node = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) in (None, ""):
            raise MalformedResponse(f"{where}: response has no {path}")
        node = node[part]
    return node


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


# --------------------------------------------------------------------------- the client base

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
        self._rng = rng or random.Random()
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


def json_or_none(resp: requests.Response) -> Any:
    """The body as JSON (decimals as ``Decimal``), or None when it is not JSON: error answers often aren't."""
    try:
        return parse_json(resp)
    except ValueError:
        return None


def transient_answer(where: str, resp: requests.Response, detail: str) -> TransientError:
    """The retryable error for a 408/429/5xx, carrying the wait the remote asked for."""
    return TransientError(f"{where}: HTTP {resp.status_code}{detail}", retry_after=wait_hint(resp.headers))


def require_object(body: Any, fields: tuple[str, ...], where: str) -> dict:
    """A successful answer checked before use: a JSON object holding every field the caller reads."""
    if not isinstance(body, dict):
        raise MalformedResponse(f"{where}: response is not a JSON object")
    for path in fields:
        require(body, path, where)
    return body


def is_transient_status(status: int) -> bool:
    """HTTP statuses worth another try: 408 (request timeout), 429 and every 5xx."""
    return status in (408, 429) or 500 <= status <= 599
