"""The wrapper every API view runs in: bearer auth, ``Idempotency-Key`` replay (409/422 as Zuora),
injected fail-next and lost-response faults for writes."""
from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import flask

from .common import (
    CAT_BUSINESS,
    CAT_CONCURRENCY,
    CAT_INVALID,
    CAT_MALFORMED,
    IDEMPOTENCY_TTL_SECONDS,
    MAX_IDEMPOTENCY_KEY,
    RES_GET,
    Body,
    _json_response,
    common_error,
    dumps,
    object_error,
    parse_json,
    reason,
)
from .oauth import _auth_failure, _bearer

if TYPE_CHECKING:
    from .state import ZuoraSandbox


class IdempotencyMixin:
    """Idempotency keys and armed faults of :class:`~integration_sandbox.zuora.state.ZuoraSandbox`."""

    # -- idempotency -------------------------------------------------------------------------------

    def idempotency_begin(self, key: str, method: str, path: str) -> tuple[str, dict | None]:
        """``("new", None)``, ``("replay", stored)``, ``("in_flight", None)`` or ``("mismatch", None)``."""
        with self.lock:
            now = self.now()
            for k in [k for k, v in self.idempotency.items() if v["expires"] <= now]:
                del self.idempotency[k]
            entry = self.idempotency.get(key)
            if entry is None:
                self.idempotency[key] = {"method": method, "path": path, "state": "in_flight",
                                         "expires": now + IDEMPOTENCY_TTL_SECONDS}
                return "new", None
            if (entry["method"], entry["path"]) != (method, path):
                return "mismatch", None
            if entry["state"] == "in_flight":
                return "in_flight", None
            return "replay", entry

    def idempotency_finish(self, key: str, status: int, body: bytes) -> None:
        with self.lock:
            entry = self.idempotency.get(key)
            if entry is not None:
                entry.update(state="done", status=status, body=body)

    def idempotency_abort(self, key: str) -> None:
        with self.lock:
            self.idempotency.pop(key, None)

    # -- fail-next ---------------------------------------------------------------------------------

    def take_fail_next(self) -> dict | None:
        with self.lock:
            if not self.fail_next or self.fail_next["count"] <= 0:
                return None
            self.fail_next["count"] -= 1
            taken = dict(self.fail_next)
            if self.fail_next["count"] == 0:
                self.fail_next = None
            return taken

    def take_lose_next(self, path: str) -> dict | None:
        """The lost-response fault for one write on ``path``, if one is armed (counted down)."""
        with self.lock:
            armed = self.lose_next.get(path)
            if not armed:
                return None
            armed["count"] -= 1
            if armed["count"] <= 0:
                del self.lose_next[path]
            return dict(armed)

def _api(sb: ZuoraSandbox, *, write: bool = False, object_api: bool = False, resource: int = RES_GET):
    """Wrap a view: bearer auth, ``Idempotency-Key`` (POST/PATCH), fail-next for writes.

    The view returns ``(body, status)``; the wrapper turns it into JSON and stores it under the key.
    """
    def shape(category: int, message: str) -> Body:
        if object_api:
            return object_error("INVALID_VALUE" if category != CAT_CONCURRENCY else "LOCK_COMPETITION", message)
        return common_error([reason(resource, category, message)])

    def decorate(view: Callable[..., tuple[Any, int]]) -> Callable[..., flask.Response]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> flask.Response:
            if not sb.token_valid(_bearer()):
                return _auth_failure()
            req = flask.request
            key = req.headers.get("Idempotency-Key") if req.method in ("POST", "PATCH") else None
            if key is not None:
                if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
                    return _json_response(shape(CAT_INVALID, "Idempotency-Key must be 1 to 255 characters"), 400)
                verdict, stored = sb.idempotency_begin(key, req.method, req.path)
                if verdict == "replay":
                    return flask.Response(stored["body"], status=stored["status"], mimetype="application/json")
                if verdict == "in_flight":
                    return _json_response(shape(CAT_CONCURRENCY, "A request with this Idempotency-Key is "
                                                                 "still in progress"), 409)
                if verdict == "mismatch":
                    return _json_response(shape(CAT_INVALID, "Idempotency-Key was already used with a "
                                                             "different URL or HTTP method"), 422)
            try:
                failure = sb.take_fail_next() if write else None
                if failure is not None:
                    if object_api:
                        body, status = object_error(str(failure["code"]), failure["message"]), 200
                    else:
                        body, status = common_error([{"code": failure["code"], "message": failure["message"]}]), 200
                else:
                    body, status = view(*args, **kwargs)
                text = dumps(body)
            except BaseException:
                if key is not None:
                    sb.idempotency_abort(key)
                raise
            if key is not None:
                sb.idempotency_finish(key, status, text.encode())
            lost = sb.take_lose_next(req.path) if write else None
            if lost is not None:
                return _lost_response(sb, lost, shape)
            return flask.Response(text, status=status, mimetype="application/json")
        return wrapper
    return decorate

def _lost_response(sb: ZuoraSandbox, lost: dict, shape: Callable[[int, str], Body]) -> flask.Response:
    """What the client gets instead of the result of a write that took effect (and whose result is
    stored under its Idempotency-Key): a 5xx, a connection held past the client's read timeout and
    then answered 504, or a ``success: false`` answer with a business-rule code."""
    if lost["mode"] == "timeout":
        time.sleep(lost["hold_seconds"])
        return _json_response({"reasons": [{"code": "SystemError", "message": "gateway timeout"}]}, 504)
    if lost["mode"] == "failure":
        body = shape(CAT_BUSINESS, lost["message"])
        return _json_response(body, 200)
    return _json_response({"reasons": [{"code": "SystemError", "message": "internal server error"}]},
                          lost["status"])


def _json_body(resource: int) -> tuple[Any, Body | None]:
    """The parsed JSON body, or a category-90 error body (HTTP 200, as Zuora answers malformed JSON)."""
    req = flask.request
    if not req.mimetype or not (req.mimetype == "application/json" or req.mimetype.endswith("+json")):
        return None, common_error([reason(resource, CAT_MALFORMED, "Content-Type must be application/json")])
    try:
        return parse_json(req.get_data(cache=False)), None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, common_error([reason(resource, CAT_MALFORMED, "Malformed JSON in the request body")])
