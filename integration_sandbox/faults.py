"""Runtime fault switches, rate limiting and concurrency limiting shared by both sandboxes.

WHY: the service must survive what real remotes do on a bad day: slow answers, 5xx bursts, requests that
hang until the gateway gives up, 429s with ``Retry-After``. A sandbox that never misbehaves lets retry and
backoff bugs ship. ``Faults`` holds the switches (set them from a test, or over HTTP with
``POST /_sandbox/faults``); :func:`install` wires them into a Flask app as request hooks.

Every non-exempt response carries the ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset``
headers (Zuora sends them on every response, zuora-api.md §5), and ``Concurrency-Limit-Limit`` /
``Concurrency-Limit-Remaining`` when a concurrency limit is on. ``RateLimit-Limit`` uses Zuora's policy
syntax (``"10, 10;w=1"``), so a client that naively ``int()``s it fails here, not in production. With the
rate limit off the headers still appear, with a large nominal limit that is never enforced.

``inject_statuses`` (e.g. ``[429, 503, 429]``) answers the next admitted requests with those statuses, one
each, in order: a deterministic storm, where ``error_rate`` is a random one. Injected 429s and 503s carry
``Retry-After: <retry_after>`` (1 s by default; ``null`` sends none, like Zuora's own 429 sample), and an
injected 429 reports its window spent (``RateLimit-Remaining: 0``, ``RateLimit-Reset`` the window's end),
so a client meets the shape the IETF draft's precedence rule is about: a short ``Retry-After`` next to a
far ``RateLimit-Reset``.

Error bodies are in the host API's own shape: pass ``error_body(status, message) -> dict`` to
:func:`install` as a keyword, or put it in ``app.config["SANDBOX_ERROR_BODY"]`` (looked up per request,
so it may be set after ``install``). Without either the body is ``{"message": message}``.
"""
from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import flask

ErrorBody = Callable[[int, str], dict]

# Reported as the limit while rate limiting is off: large enough that no client ever throttles on it.
NOMINAL_RATE_LIMIT = 1_000_000
MAX_LATENCY_MS = 600_000
MAX_HANG_SECONDS = 600.0
MAX_WINDOW_SECONDS = 86_400.0

_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0,
    "error_rate": 0.0,
    "error_status": 500,
    "hang_rate": 0.0,
    "hang_seconds": 30.0,
    "rate_limit": None,
    "rate_window_seconds": 1.0,
    "concurrency_limit": None,
    "seed": None,
    "inject_statuses": (),
    "retry_after": 1,
}
MAX_INJECTED = 1000
INJECTABLE_STATUSES = (429, 500, 503)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate(key: str, value: Any) -> Any:
    """Return the normalised value for one setting, or raise ValueError naming the key."""
    if key == "latency_ms":
        if _is_int(value) and 0 <= value <= MAX_LATENCY_MS:
            return value
        raise ValueError(f"latency_ms must be an integer 0..{MAX_LATENCY_MS}")
    if key in ("error_rate", "hang_rate"):
        if _is_number(value) and 0 <= value <= 1:
            return float(value)
        raise ValueError(f"{key} must be a number between 0 and 1")
    if key == "error_status":
        if _is_int(value) and value in (500, 503):
            return value
        raise ValueError("error_status must be 500 or 503")
    if key == "hang_seconds":
        if _is_number(value) and 0 <= value <= MAX_HANG_SECONDS:
            return float(value)
        raise ValueError(f"hang_seconds must be a number 0..{MAX_HANG_SECONDS:g}")
    if key in ("rate_limit", "concurrency_limit"):
        if value is None or (_is_int(value) and value >= 1):
            return value
        raise ValueError(f"{key} must be a positive integer or null")
    if key == "rate_window_seconds":
        if _is_number(value) and 0 < value <= MAX_WINDOW_SECONDS:
            return float(value)
        raise ValueError(f"rate_window_seconds must be a number > 0 and <= {MAX_WINDOW_SECONDS:g}")
    if key == "seed":
        if value is None or _is_int(value):
            return value
        raise ValueError("seed must be an integer or null")
    if key == "inject_statuses":
        if (isinstance(value, (list, tuple)) and len(value) <= MAX_INJECTED
                and all(_is_int(v) and v in INJECTABLE_STATUSES for v in value)):
            return tuple(value)
        raise ValueError(f"inject_statuses must be a list of at most {MAX_INJECTED} of 429, 500, 503")
    if key == "retry_after":
        if value is None or (_is_int(value) and 0 <= value <= MAX_WINDOW_SECONDS):
            return value
        raise ValueError(f"retry_after must be an integer 0..{MAX_WINDOW_SECONDS:g} or null")
    raise ValueError(f"unknown fault setting: {key}")


@dataclass(frozen=True)
class Admission:
    """What the hooks must do with one request, decided atomically under the Faults lock."""

    reject_status: int | None = None      # 429 when a limit refused the request
    reject_message: str = ""
    retry_after: int | None = None
    holds_slot: bool = False              # a concurrency slot was taken and must be released
    latency_seconds: float = 0.0
    hang_seconds: float | None = None     # sleep this long, then answer 504
    error_status: int | None = None       # answer this injected status (a 5xx, or 429 from inject_statuses)
    window_spent: bool = False            # report RateLimit-Remaining: 0 (an injected 429)


class Faults:
    """Thread-safe fault switches plus a fixed-window rate limiter and a concurrency limiter.

    ``clock`` (monotonic seconds) drives the rate window and ``sleep`` the injected latency and hangs,
    so tests can run them without real waiting.
    """

    def __init__(self, *, rate_limit: int | None = None, rate_window_seconds: float = 1.0,
                 concurrency_limit: int | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        initial = dict(_DEFAULTS)
        for key, value in (("rate_limit", rate_limit), ("rate_window_seconds", rate_window_seconds),
                           ("concurrency_limit", concurrency_limit)):
            initial[key] = _validate(key, value)
        self._initial = initial
        self._reset_locked()

    # -- settings ---------------------------------------------------------------------------------

    def configure(self, **settings: Any) -> dict:
        """Change some settings atomically (all valid or none applied); returns :meth:`snapshot`."""
        normalised = {key: _validate(key, value) for key, value in settings.items()}
        with self._lock:
            self._settings.update(normalised)
            if "seed" in normalised:
                self._rng = random.Random(normalised["seed"])  # noqa: S311 - seeded, reproducible faults
            if {"rate_limit", "rate_window_seconds"} & normalised.keys():
                self._window_start, self._window_count = None, 0
        return self.snapshot()

    def snapshot(self) -> dict:
        """The current settings (the keys ``configure`` accepts) plus a ``counters`` dict."""
        with self._lock:
            return {**self._settings, "inject_statuses": list(self._settings["inject_statuses"]),
                    "counters": dict(self._counters, in_flight=self._in_flight)}

    def reset(self) -> None:
        """Back to the constructor's settings; counters, the rate window and the seed cleared."""
        with self._lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self._settings = dict(self._initial)
        self._rng = random.Random(self._settings["seed"])  # noqa: S311 - seeded, reproducible faults
        self._window_start: float | None = None
        self._window_count = 0
        self._in_flight = getattr(self, "_in_flight", 0)  # requests in progress keep their slots
        self._counters = {"requests": 0, "rate_limited": 0, "concurrency_limited": 0,
                          "injected_errors": 0, "hangs": 0}

    @property
    def sleep(self) -> Callable[[float], None]:
        return self._sleep

    # -- per-request decisions --------------------------------------------------------------------

    def admit(self) -> Admission:
        """Count one request against the limits and roll the dice for injected faults.

        Refused requests count towards the rate window too, as on Zuora ("failed requests also count").
        """
        with self._lock:
            self._counters["requests"] += 1
            s = self._settings
            now = self._clock()
            self._roll_window(now)
            self._window_count += 1
            if s["rate_limit"] is not None and self._window_count > s["rate_limit"]:
                self._counters["rate_limited"] += 1
                return Admission(429, "rate limit exceeded", retry_after=max(1, self._reset_in(now)))
            limit = s["concurrency_limit"]
            if limit is not None and self._in_flight >= limit:
                self._counters["concurrency_limited"] += 1
                return Admission(429, "concurrency limit exceeded", retry_after=1)
            self._in_flight += 1
            latency = s["latency_ms"] / 1000.0
            if s["inject_statuses"]:
                status, s["inject_statuses"] = s["inject_statuses"][0], s["inject_statuses"][1:]
                self._counters["injected_errors"] += 1
                return Admission(holds_slot=True, latency_seconds=latency, error_status=status,
                                 retry_after=s["retry_after"], window_spent=status == 429)
            if s["hang_rate"] and self._rng.random() < s["hang_rate"]:
                self._counters["hangs"] += 1
                return Admission(holds_slot=True, latency_seconds=latency, hang_seconds=s["hang_seconds"])
            if s["error_rate"] and self._rng.random() < s["error_rate"]:
                self._counters["injected_errors"] += 1
                return Admission(holds_slot=True, latency_seconds=latency, error_status=s["error_status"],
                                 retry_after=s["retry_after"])
            return Admission(holds_slot=True, latency_seconds=latency)

    def release(self) -> None:
        """Give back the concurrency slot taken by :meth:`admit`."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def headers(self) -> dict[str, str]:
        """The RateLimit-* (and, when limited, Concurrency-Limit-*) headers for a response now."""
        with self._lock:
            s = self._settings
            now = self._clock()
            self._roll_window(now)
            limit = s["rate_limit"] if s["rate_limit"] is not None else NOMINAL_RATE_LIMIT
            window = s["rate_window_seconds"]
            out = {
                "RateLimit-Limit": f"{limit}, {limit};w={window:g}",
                "RateLimit-Remaining": str(max(0, limit - self._window_count)),
                "RateLimit-Reset": str(self._reset_in(now)),
            }
            if s["concurrency_limit"] is not None:
                out["Concurrency-Limit-Limit"] = str(s["concurrency_limit"])
                out["Concurrency-Limit-Remaining"] = str(max(0, s["concurrency_limit"] - self._in_flight))
            return out

    def _roll_window(self, now: float) -> None:
        window = self._settings["rate_window_seconds"]
        if self._window_start is None or now - self._window_start >= window:
            self._window_start, self._window_count = now, 0

    def _reset_in(self, now: float) -> int:
        """Whole seconds until the current window ends (rounded up, at least 0)."""
        window = self._settings["rate_window_seconds"]
        start = self._window_start if self._window_start is not None else now
        return max(0, math.ceil(start + window - now))


def _default_error_body(status: int, message: str) -> dict:
    return {"message": message}


_G_ATTR = "_sandbox_faults_slot"
_G_SPENT = "_sandbox_faults_window_spent"


def install(app: flask.Flask, faults: Faults, *, api_name: str,
            exempt_prefixes: Iterable[str] = ("/_sandbox",), error_body: ErrorBody | None = None) -> None:
    """Wire ``faults`` into ``app``: hooks on every non-exempt request, plus ``/_sandbox/faults``.

    Order per request: rate limit, concurrency limit (both 429 with ``Retry-After``), added latency,
    the next of ``inject_statuses``, hang (sleep ``hang_seconds`` then 504), injected ``error_status``.
    The hooks are registered with ``before_request``, so install faults before the app's own hooks if
    those should see only admitted requests (Flask runs before_request functions in registration order).
    """
    exempt = tuple(exempt_prefixes)
    app.extensions[f"{api_name}_faults"] = faults

    def body_for(status: int, message: str) -> dict:
        maker = error_body or app.config.get("SANDBOX_ERROR_BODY") or _default_error_body
        return maker(status, message)

    def is_exempt() -> bool:
        return flask.request.path.startswith(exempt)

    @app.before_request
    def _faults_before() -> flask.Response | None:
        if is_exempt():
            return None
        decision = faults.admit()
        if decision.holds_slot:
            setattr(flask.g, _G_ATTR, True)
        if decision.window_spent:
            setattr(flask.g, _G_SPENT, True)
        if decision.reject_status is not None:
            resp = flask.jsonify(body_for(decision.reject_status, decision.reject_message))
            resp.status_code = decision.reject_status
            resp.headers["Retry-After"] = str(decision.retry_after)
            return resp
        if decision.latency_seconds:
            faults.sleep(decision.latency_seconds)
        if decision.hang_seconds is not None:
            faults.sleep(decision.hang_seconds)
            resp = flask.jsonify(body_for(504, "gateway timeout"))
            resp.status_code = 504
            return resp
        if decision.error_status is not None:
            resp = flask.jsonify(body_for(decision.error_status, f"injected {api_name} fault"))
            resp.status_code = decision.error_status
            if decision.error_status in (429, 503) and decision.retry_after is not None:
                resp.headers["Retry-After"] = str(decision.retry_after)
            return resp
        return None

    @app.after_request
    def _faults_after(response: flask.Response) -> flask.Response:
        if not is_exempt():
            response.headers.update(faults.headers())
            if flask.g.pop(_G_SPENT, False):
                response.headers["RateLimit-Remaining"] = "0"
        return response

    @app.teardown_request
    def _faults_teardown(_exc: BaseException | None) -> None:
        if flask.g.pop(_G_ATTR, False):
            faults.release()

    @app.get("/_sandbox/faults", endpoint="sandbox_faults_get")
    def _faults_get() -> flask.Response:
        return flask.jsonify(faults.snapshot())

    @app.post("/_sandbox/faults", endpoint="sandbox_faults_post")
    def _faults_post() -> tuple[flask.Response, int] | flask.Response:
        # Plain JSON, not the app's provider: a sandbox that reads numbers as Decimal (billing)
        # must still hand the switches the floats they take.
        try:
            payload = json.loads(flask.request.get_data() or b"null")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return flask.jsonify({"error": "invalid_fault", "detail": "body must be a JSON object"}), 400
        if "counters" in payload:
            return flask.jsonify({"error": "invalid_fault", "detail": "counters are read-only"}), 400
        try:
            return flask.jsonify(faults.configure(**payload))
        except ValueError as exc:
            return flask.jsonify({"error": "invalid_fault", "detail": str(exc)}), 400

    @app.delete("/_sandbox/faults", endpoint="sandbox_faults_delete")
    def _faults_delete() -> flask.Response:
        faults.reset()
        return flask.jsonify(faults.snapshot())
