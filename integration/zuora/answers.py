"""Reading Zuora's answers: its two error shapes, its error-code categories, and what each means for a repeat.

Zuora answers business errors with HTTP 200 and ``success: false`` as often as with a 4xx, the
older ``/v1/object/*`` calls spell it ``Success``/``Errors``, and an error code's last two digits
say whether retrying can help (reference/zuora-api.md §9). ``reader`` folds all of that into the
``interpret`` callback ``RemoteClient._call`` expects: the validated answer, or a
``TransientError`` (retry), ``ZuoraRejected`` (Zuora said no) or ``MalformedResponse``.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

import requests

from integration.clients.answers import (
    is_transient_status,
    require_object,
    transient_answer,
)
from integration.clients.bodies import json_or_none
from integration.clients.pacing import wait_hint
from integration.domain.errors import MalformedResponse, TransientError, ZuoraRejected

TRANSIENT_CATEGORIES = frozenset({"50", "61", "70", "99"})
"""Error categories (the LAST two digits of Zuora's 8-digit code) Zuora's guide says to retry:
locking contention, temporary error, concurrency limit exceeded, external gateway/tax error
(CONTRACT §5). Every other category is refused at once, except ``INTERNAL_ERROR_CATEGORY``."""

INTERNAL_ERROR_CATEGORY = "60"
"""Zuora's "internal error": its guide says to retry it "very few times", so it is."""

INTERNAL_ERROR_RETRIES = 2
"""Repeats of a call answered with an internal error (category 60) before it counts as refused.

A fault that survives three tries within seconds is not passing; as ``ZuoraRejected`` it reaches
the failure list with Zuora's code and processId for an operator to chase, instead of spending
the rate budget on every scheduled retry."""

TRANSIENT_NAMED_CODES = frozenset({"LOCK_COMPETITION", "TEMPORARY_ERROR", "SERVER_UNAVAILABLE",
                                   "REQUEST_EXCEEDED_LIMIT", "REQUEST_EXCEEDED_RATE"})
"""The same conditions as spelled by the CRUD/SOAP API's named fault codes (``/v1/object/*``)."""

IDEMPOTENCY_KEY_MAX = 255


def category(code: str | None) -> str | None:
    """The 2-digit category of a Zuora error code: its last two digits, when the code has 8.

    The first six digits name the resource (e.g. ``500000`` for a GET), so ``50000040`` is
    "not found" (40), not "locking contention" (50).
    """
    if code is not None and len(code) == 8 and code.isdigit():
        return code[-2:]
    return None


def is_transient_code(code: str | None) -> bool:
    """Whether Zuora's guide says a request that failed with ``code`` may succeed if repeated."""
    if code is None:
        return False
    return category(code) in TRANSIENT_CATEGORIES or code.upper() in TRANSIENT_NAMED_CODES


def reasons(body: Any) -> list[tuple[str | None, str]]:
    """``(code, message)`` pairs from either error shape, codes normalised to strings.

    ``reasons[].code`` is a number in Zuora's guides and a string in the current spec;
    ``Errors[].Code`` is a name such as ``INVALID_VALUE``.
    """
    if not isinstance(body, Mapping):
        return []
    found = []
    for list_key, code_key, message_key in (("reasons", "code", "message"), ("Errors", "Code", "Message")):
        entries = body.get(list_key)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            code = entry.get(code_key)
            code = None if code is None or isinstance(code, bool) else str(code).strip() or None
            message = entry.get(message_key)
            found.append((code, str(message) if message is not None else ""))
    return found


def is_failure(body: Any) -> bool:
    """Zuora's "it did not happen" flag, in either spelling."""
    return isinstance(body, Mapping) and (body.get("success") is False or body.get("Success") is False)


def reader(where: str, fields: tuple[str, ...], clean: Callable[[Any], str], *, idempotent: bool = False,
           keyed: dict[str, str] | None = None) -> Callable[[requests.Response], dict[str, Any]]:
    """The ``interpret`` callback for one call: result, or the error that says what to do next.

    ``keyed``: the headers of a POST that carries an ``Idempotency-Key``. Zuora stores every
    answer under its key for 24 h, failures included, so when it answers "did not happen, try
    again" (``success: false`` with a retryable code) a repeat under the same key would only get
    that stored failure back. Such an answer is definitive — nothing was created under the key —
    so the next try goes out under a fresh key derived from it. Answers that may hide a success
    (a 5xx, a timeout) keep the key, so that a lost result is replayed from Zuora's store.

    ``where`` names the call in messages ("Zuora POST /v1/accounts"); ``clean`` is the client's
    scrubber, applied to every text taken from a body.
    """
    internal_errors = 0  # per call: this closure serves one _call's attempts

    def interpret(resp: requests.Response) -> dict[str, Any]:
        nonlocal internal_errors
        status = resp.status_code
        body = json_or_none(resp)
        if is_transient_status(status):
            raise transient_answer(where, resp, detail(body, clean))
        if status == 409 and idempotent and not body_says_done(body, fields):
            raise TransientError(f"{where}: a request with this Idempotency-Key is still in progress "
                                 f"(HTTP 409)", retry_after=wait_hint(resp.headers))
        if is_failure(body) or (400 <= status < 500 and status != 409) or (status == 409 and not idempotent):
            if any(category(code) == INTERNAL_ERROR_CATEGORY for code, _ in reasons(body)):
                internal_errors += 1
            error = rejection(where, status, body, resp.headers, clean,
                              retry_internal=internal_errors <= INTERNAL_ERROR_RETRIES)
            if keyed is not None and isinstance(error, TransientError):
                keyed["Idempotency-Key"] = fresh_key(keyed["Idempotency-Key"])
            raise error
        if not (200 <= status < 300 or status == 409):
            raise MalformedResponse(f"{where}: unexpected HTTP {status}")
        return require_object(body, fields, where)

    return interpret


def detail(body: Any, clean: Callable[[Any], str]) -> str:
    """Zuora's reasons as `` (code: message; …)`` for an error message, scrubbed; empty when there are none."""
    messages = [f"{c}: {m}" if c else m for c, m in reasons(body) if m or c]
    if not messages and isinstance(body, Mapping) and isinstance(body.get("message"), str):
        messages = [body["message"]]
    return f" ({clean('; '.join(messages))})" if messages else ""


def rejection(where: str, status: int, body: Any, headers: Mapping[str, str], clean: Callable[[Any], str], *,
              retry_internal: bool = False) -> Exception:
    """``ZuoraRejected``, or ``TransientError`` when every reason's category says "try again".

    ``retry_internal``: an internal error (category 60) counts as "try again" too — the
    caller allows it for the first ``INTERNAL_ERROR_RETRIES`` repeats of one call only.
    """
    found = reasons(body)
    process_id = str_or_none(body.get("processId")) if isinstance(body, Mapping) else None
    process_id = clean(process_id)[:64] if process_id else None
    if found and all(is_transient_code(code) or (retry_internal and category(code) == INTERNAL_ERROR_CATEGORY)
                     for code, _ in found):
        return TransientError(f"{where}: Zuora asks to try again{detail(body, clean)}",
                              retry_after=wait_hint(headers))
    if found:
        code = next((c for c, _ in found if c), None)
        message = "; ".join(m for _, m in found if m) or f"HTTP {status}"
    else:
        code = None
        said = body.get("message") if isinstance(body, Mapping) else None
        message = said if isinstance(said, str) and said else f"HTTP {status}"
    return ZuoraRejected(clean(message), remote_code=code, process_id=process_id, http_status=status)


def fresh_key(key: str) -> str:
    """A new key for a repeat of a POST Zuora definitively refused under ``key``: the original with
    a random suffix (replacing an earlier one), within Zuora's 255 characters."""
    base = key.split("~retry-", 1)[0]
    suffix = f"~retry-{secrets.token_hex(6)}"
    return base[:IDEMPOTENCY_KEY_MAX - len(suffix)] + suffix


def body_says_done(body: Any, fields: tuple[str, ...]) -> bool:
    """Whether a 409 to an idempotent POST carries the finished original result.

    Zuora's guides disagree on 409: "still in progress" (idempotent-requests) or "your operation
    is complete, here is the original result" (error-handling). A body with the fields the call
    returns, or an explicit ``success: true``, is the latter; anything else is treated as the former.
    """
    if not isinstance(body, Mapping) or is_failure(body):
        return False
    if body.get("success") is True or body.get("Success") is True:
        return True
    return bool(fields) and all(_has(body, path) for path in fields)


def _has(body: Mapping[str, Any], path: str) -> bool:
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) in (None, ""):
            return False
        node = node[part]
    return True


def str_or_none(value: Any) -> str | None:
    """A code or ID from a body as text: strings and integers only (``True`` is no ID), never empty."""
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None
