"""The Zuora REST client the flows call: OAuth, idempotent pushes, Zuora's error shapes.

Zuora answers business errors with HTTP 200 and ``success: false`` as often as with a 4xx, the
older ``/v1/object/*`` calls spell it ``Success``/``Errors``, and an error code's last two digits
say whether retrying can help (reference/zuora-api.md §9). This client folds all of that into the
one promise the flows rely on: a method returns what it was asked for, validated, or raises a
``TransientError`` (retry later), ``ZuoraRejected`` (Zuora said no), ``AuthFailed`` or
``MalformedResponse``. Retrying, pacing, metrics and logging are ``integration.clients.http``'s.

One instance serves the whole process: it holds one OAuth token, shared by every thread and
refreshed by exactly one of them shortly before it expires (Zuora: "avoid generating a new
token for each call"; the token endpoint is rate-limited per IP).
"""
from __future__ import annotations

import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.client import OAuth2Client

from integration.clients.http import (
    RemoteClient,
    dumps_json,
    header_value,
    is_transient_status,
    json_or_none,
    parse_json,
    require_object,
    transient_answer,
    wait_hint,
)
from integration.context import current_event_id
from integration.domain.errors import (
    AuthFailed,
    InvalidData,
    MalformedResponse,
    TransientError,
    ZuoraRejected,
)

DEFAULT_ZUORA_VERSION = "2025-08-12"
"""The minor API version pinned on every v1 call: the latest per reference §6 (and zuora-sdk 3.21's).

Without the header a never-upgraded tenant answers as 186.0, so response shapes would depend on
the tenant's history; pinning makes them depend on this code only.
"""

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
USAGE_FILE_MAX_BYTES = 4_194_304
USAGE_FILENAME_MAX = 50
OBJECT_QUERY_PAGE_SIZE = 99
OBJECT_QUERY_MAX_PAGES = 20
USAGE_QUERY_MAX_PAGES = 100
TRACK_ID_MAX = 64

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
_IMPORT_STATUS_PATH = re.compile(r"^/v1/usage/([A-Za-z0-9_-]{1,64})/status$")
_TRACK_ID_FORBIDDEN = re.compile(r"[^ -~]|[:;\"']")
_TOKEN_ENDPOINT = "/oauth/token"


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


def track_id(event_id: str | None) -> str | None:
    """``Zuora-Track-Id`` for an event: ≤64 US-ASCII characters without ``: ; " '`` (reference §6)."""
    if not event_id:
        return None
    cleaned = _TRACK_ID_FORBIDDEN.sub("", str(event_id))[:TRACK_ID_MAX].strip()
    return cleaned or None


class _TokenClient(OAuth2Client):
    """authlib's client-credentials protocol over our own transport.

    This is ``OAuth2Session`` minus the "is a ``requests.Session``" part: the token request goes
    through ``ZuoraClient._send`` like every other call, so it gets the same timeouts, pacing,
    metrics, logs and transport-error mapping (and the caller's session, adapters included).
    """

    client_auth_class = OAuth2Session.client_auth_class
    token_auth_class = OAuth2Session.token_auth_class
    oauth_error_class = OAuth2Session.oauth_error_class
    SESSION_REQUEST_PARAMS = OAuth2Session.SESSION_REQUEST_PARAMS


class _TokenTransport:
    """The ``session`` authlib posts to: routes the token request through the metered ``_send``."""

    def __init__(self, send: Callable[..., requests.Response]):
        self._send = send

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send("POST", _TOKEN_ENDPOINT, url, 1, **kwargs)


class ZuoraClient(RemoteClient):
    """Zuora v1 REST calls used by the sync flows; see the module docstring for the promise it keeps."""

    api = "zuora"
    TOKEN_MARGIN = 60.0
    """Seconds before expiry at which the token is replaced, so no call goes out with a dying one."""

    def __init__(self, base_url: str, client_id: str, client_secret: str, *, entity_id: str | None = None,
                 zuora_version: str = DEFAULT_ZUORA_VERSION, timeout: float | tuple[float, float] = (5, 30),
                 max_concurrency: int = 40, max_retry_seconds: float = 60.0, max_attempts: int = 6,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 session: requests.Session | None = None, rng: random.Random | None = None):
        super().__init__(base_url, timeout=timeout, max_concurrency=max_concurrency,
                         max_retry_seconds=max_retry_seconds, max_attempts=max_attempts, clock=clock,
                         sleep=sleep, session=session, rng=rng)
        if not client_id or not client_secret:
            raise ValueError("ZuoraClient: client_id and client_secret are required")
        self.entity_id = entity_id or None
        self.zuora_version = zuora_version
        self._client_secret = client_secret
        self._oauth = _TokenClient(_TokenTransport(self._send), client_id=client_id, client_secret=client_secret,
                                   token_endpoint_auth_method="client_secret_post")
        self._oauth.register_compliance_hook("access_token_response", self._check_token_response)
        self._token_lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (access token, replace-after on self._clock)
        self._old_tokens: tuple[str, ...] = ()  # still scrubbed: a late echo must not leak them

    def __repr__(self) -> str:
        return f"ZuoraClient(base_url={self.base_url!r}, entity_id={self.entity_id!r})"

    # ------------------------------------------------------------------ accounts

    def get_account(self, key: str) -> dict:
        """``GET /v1/accounts/{key}`` (ID or number); not found is ``ZuoraRejected`` with Zuora's code."""
        endpoint = "/v1/accounts/{key}"
        return self._call("GET", endpoint, self.url(endpoint, key=key),
                          self._reader("GET", endpoint, ("basicInfo.id", "basicInfo.accountNumber")))

    def create_account(self, payload: dict, *, idempotency_key: str) -> dict:
        """``POST /v1/accounts``; returns Zuora's answer with ``accountId`` and ``accountNumber``."""
        return self._post("/v1/accounts", payload, idempotency_key, ("accountId", "accountNumber"))

    def update_account(self, key: str, payload: dict) -> None:
        """``PUT /v1/accounts/{key}``. PUT is idempotent by nature, so Zuora takes no key for it."""
        endpoint = "/v1/accounts/{key}"
        self._call("PUT", endpoint, self.url(endpoint, key=key), self._reader("PUT", endpoint, ()),
                   data=self._json(payload, "payload"), headers={"Content-Type": "application/json"})

    def find_accounts(self, field: str, value: str) -> list[dict]:
        """Accounts whose ``field`` equals ``value`` via Object Query (``filter[]=field.EQ:value``).

        Used to find an account by the link custom field, so the flows can recognise an account
        they created before a crash lost the mapping row. Pages are followed to a bound.
        """
        return self._object_query("accounts", field, value)

    def find_invoices(self, field: str, value: str) -> list[dict]:
        """Invoices whose ``field`` (e.g. the invoice link custom field) equals ``value``, via Object
        Query: how a new attempt series finds the invoice an earlier one created but never recorded."""
        return self._object_query("invoices", field, value)

    def find_usages(self, account_id: str, *, created_since: datetime) -> list[dict]:
        """The usage records of one account created at or after ``created_since`` (Object Query
        ``usages`` filtered by ``accountId`` and ``createdDate.GE``), so the usage flow can push only
        what the account does not hold yet without reading the account's whole history."""
        if created_since.tzinfo is None:
            raise ValueError("created_since must be timezone-aware")
        since = created_since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._object_query("usages", [("accountId", "EQ", account_id), ("createdDate", "GE", since)],
                                  max_pages=USAGE_QUERY_MAX_PAGES)

    def _object_query(self, resource: str, filters: str | list[tuple[str, str, str]], value: str | None = None,
                      *, max_pages: int = OBJECT_QUERY_MAX_PAGES) -> list[dict]:
        """``GET /object-query/{resource}`` with ``filter[]=field.OP:value`` per filter (ANDed), every
        page up to ``max_pages``. ``(resource, field, value)`` is the one-``EQ`` shorthand."""
        if isinstance(filters, str):
            filters = [(filters, "EQ", value)]
        params = []
        for field, op, wanted in filters:
            if not isinstance(field, str) or not _FIELD_NAME.match(field):
                raise InvalidData("field", "must be a Zuora field name such as BillingAccountId__c")
            if not isinstance(wanted, str) or not wanted or any(ch < " " for ch in wanted):
                raise InvalidData("value", "must be a non-empty string without control characters")
            params.append(("filter[]", f"{field}.{op}:{wanted}"))
        params.append(("pageSize", str(OBJECT_QUERY_PAGE_SIZE)))
        endpoint = f"/object-query/{resource}"
        found: list[dict] = []
        cursor: str | None = None
        for _ in range(max_pages):
            body = self._call("GET", endpoint, self.url(endpoint), self._reader("GET", endpoint, ()),
                              params=params + ([("cursor", cursor)] if cursor else []))
            found.extend(self._query_rows(body, endpoint))
            cursor = body.get("nextPage")
            if not isinstance(cursor, str) or not cursor:
                return found
        raise MalformedResponse(f"Zuora GET {endpoint}: more than {max_pages} pages for one query; "
                                f"refusing to guess which {resource} are meant")

    @staticmethod
    def _query_rows(body: dict, endpoint: str) -> list[dict]:
        rows = body.get("data")
        if not isinstance(rows, list) or not all(isinstance(r, dict) and r.get("id") for r in rows):
            raise MalformedResponse(f"Zuora GET {endpoint}: response has no data list of records with id")
        return rows

    # ------------------------------------------------------------------ invoices

    def create_invoice(self, payload: dict, *, idempotency_key: str) -> dict:
        """``POST /v1/invoices`` (standalone invoice); returns Zuora's answer with ``id`` and ``invoiceNumber``."""
        return self._post("/v1/invoices", payload, idempotency_key, ("id", "invoiceNumber"))

    def get_invoice(self, invoice_id: str) -> dict:
        """``GET /v1/invoices/{invoice_id}``; amounts come back as ``Decimal``."""
        endpoint = "/v1/invoices/{invoice_id}"
        return self._call("GET", endpoint, self.url(endpoint, invoice_id=invoice_id),
                          self._reader("GET", endpoint, ("id",)))

    # ------------------------------------------------------------------ usage

    def create_usage(self, record: dict, *, idempotency_key: str) -> dict:
        """``POST /v1/object/usage``: one PascalCase usage record; returns ``{"Id": ..., "Success": true}``."""
        return self._post("/v1/object/usage", record, idempotency_key, ("Id",))

    def upload_usage(self, csv_bytes: bytes, *, filename: str, idempotency_key: str) -> str:
        """``POST /v1/usage`` (multipart CSV, imported atomically); returns the import ID to poll.

        The ID is taken from ``checkImportStatus`` and the status URL rebuilt from it, so a remote
        cannot make us fetch an arbitrary path.
        """
        if not isinstance(csv_bytes, (bytes, bytearray)) or not csv_bytes:
            raise InvalidData("csv_bytes", "must be non-empty bytes")
        if len(csv_bytes) > USAGE_FILE_MAX_BYTES:
            raise InvalidData("csv_bytes", f"usage file is {len(csv_bytes)} bytes; Zuora accepts at most "
                                           f"{USAGE_FILE_MAX_BYTES}")
        name = header_value("filename", filename, max_length=USAGE_FILENAME_MAX)
        if any(ch in name for ch in '/\\"'):
            raise InvalidData("filename", "must not contain / \\ or \"")
        endpoint = "/v1/usage"
        headers = {"Idempotency-Key": self._idempotency_key(idempotency_key)}
        body = self._call("POST", endpoint, self.url(endpoint),
                          self._reader("POST", endpoint, ("checkImportStatus",), idempotent=True, keyed=headers),
                          headers=headers, files={"file": (name, bytes(csv_bytes), "text/csv")})
        match = _IMPORT_STATUS_PATH.match(str(body["checkImportStatus"]))
        if not match:
            raise MalformedResponse(f"Zuora POST {endpoint}: checkImportStatus is not /v1/usage/<id>/status")
        return match.group(1)

    def wait_for_usage_import(self, import_id: str, *, timeout: float = 300, poll_interval: float = 1.0) -> dict:
        """Poll an upload until Zuora says ``Completed``; the import is atomic, so that means every record.

        Polls start at a tenth of ``poll_interval`` and double up to it: a small file is done in well
        under a second, so the worker is not held a full interval for it; a large one is not polled
        more than once per ``poll_interval``.

        ``Failed``/``Canceled`` → ``ZuoraRejected`` carrying the import's own reason. Still pending
        after ``timeout`` → ``TransientError``: the flow is retried later and, re-uploading with
        the same idempotency key, gets the same import back to poll.
        """
        match = _IMPORT_STATUS_PATH.match(import_id) if isinstance(import_id, str) else None
        import_id = match.group(1) if match else import_id
        endpoint = "/v1/usage/{import_id}/status"
        url = self.url(endpoint, import_id=import_id)
        deadline = self._clock() + timeout
        wait = poll_interval / 10
        while True:
            body = self._call("GET", endpoint, url, self._reader("GET", endpoint, ()))
            status = body.get("importStatus", body.get("status"))
            if not isinstance(status, str):
                raise MalformedResponse(f"Zuora GET {endpoint}: response has no importStatus")
            state = status.strip().lower()
            if state == "completed":
                return body
            if state in ("failed", "canceled", "cancelled"):
                raise ZuoraRejected(self._import_reason(body, import_id, status),
                                    process_id=_str_or_none(body.get("processId")), http_status=200)
            if state not in ("pending", "processing"):
                raise MalformedResponse(f"Zuora GET {endpoint}: unknown importStatus {self.clean(status)!r}")
            if self._clock() + wait > deadline:
                raise TransientError(f"Zuora usage import {import_id} still {status} after {timeout:g} s",
                                     retry_after=poll_interval)
            self._sleep(wait)
            wait = min(wait * 2, poll_interval)

    def _import_reason(self, body: dict, import_id: str, status: str) -> str:
        for key in ("message", "statusReason", "StatusReason", "importStatusMessage"):
            if isinstance(body.get(key), str) and body[key].strip():
                return self.clean(body[key])
        messages = [m for _, m in reasons(body) if m]
        if messages:
            return self.clean("; ".join(messages))
        return f"usage import {import_id} {status}"

    # ------------------------------------------------------------------ request plumbing

    def _post(self, endpoint: str, payload: dict, idempotency_key: str, fields: tuple[str, ...]) -> dict:
        headers = {"Content-Type": "application/json", "Idempotency-Key": self._idempotency_key(idempotency_key)}
        return self._call("POST", endpoint, self.url(endpoint),
                          self._reader("POST", endpoint, fields, idempotent=True, keyed=headers),
                          data=self._json(payload, "payload"), headers=headers)

    @staticmethod
    def _json(payload: Any, name: str) -> bytes:
        if not isinstance(payload, Mapping):
            raise InvalidData(name, "must be a JSON object")
        return dumps_json(payload)

    @staticmethod
    def _idempotency_key(key: Any) -> str:
        """The caller's key, checked: Zuora accepts ≤255 characters, and a header must be printable ASCII."""
        return header_value("idempotency_key", key, max_length=IDEMPOTENCY_KEY_MAX)

    def _default_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "Zuora-Version": self.zuora_version}
        if self.entity_id:
            headers["Zuora-Entity-Ids"] = self.entity_id
        track = track_id(current_event_id.get())
        if track:
            headers["Zuora-Track-Id"] = track
        return headers

    def _secrets(self) -> Iterable[str]:
        token = self._token
        return (self._client_secret, *(token[:1] if token else ()), *self._old_tokens)

    # ------------------------------------------------------------------ reading answers

    def _reader(self, method: str, endpoint: str, fields: tuple[str, ...], *, idempotent: bool = False,
                keyed: dict[str, str] | None = None) -> Callable[[requests.Response], dict]:
        """The ``interpret`` callback for one call: result, or the error that says what to do next.

        ``keyed``: the headers of a POST that carries an ``Idempotency-Key``. Zuora stores every
        answer under its key for 24 h, failures included, so when it answers "did not happen, try
        again" (``success: false`` with a retryable code) a repeat under the same key would only get
        that stored failure back. Such an answer is definitive — nothing was created under the key —
        so the next try goes out under a fresh key derived from it. Answers that may hide a success
        (a 5xx, a timeout) keep the key, so that a lost result is replayed from Zuora's store.
        """
        where = f"Zuora {method} {endpoint}"
        internal_errors = 0  # per call: this closure serves one _call's attempts

        def interpret(resp: requests.Response) -> dict:
            nonlocal internal_errors
            status = resp.status_code
            body = json_or_none(resp)
            if is_transient_status(status):
                raise transient_answer(where, resp, self._detail(body))
            if status == 409 and idempotent and not body_says_done(body, fields):
                raise TransientError(f"{where}: a request with this Idempotency-Key is still in progress "
                                     f"(HTTP 409)", retry_after=wait_hint(resp.headers))
            if is_failure(body) or (400 <= status < 500 and status != 409) or (status == 409 and not idempotent):
                if any(category(code) == INTERNAL_ERROR_CATEGORY for code, _ in reasons(body)):
                    internal_errors += 1
                error = self._rejection(where, status, body, resp.headers,
                                        retry_internal=internal_errors <= INTERNAL_ERROR_RETRIES)
                if keyed is not None and isinstance(error, TransientError):
                    keyed["Idempotency-Key"] = fresh_key(keyed["Idempotency-Key"])
                raise error
            if not (200 <= status < 300 or status == 409):
                raise MalformedResponse(f"{where}: unexpected HTTP {status}")
            return require_object(body, fields, where)

        return interpret

    def _detail(self, body: Any) -> str:
        messages = [f"{c}: {m}" if c else m for c, m in reasons(body) if m or c]
        if not messages and isinstance(body, Mapping) and isinstance(body.get("message"), str):
            messages = [body["message"]]
        return f" ({self.clean('; '.join(messages))})" if messages else ""

    def _rejection(self, where: str, status: int, body: Any, headers: Mapping[str, str], *,
                   retry_internal: bool = False) -> Exception:
        """``ZuoraRejected``, or ``TransientError`` when every reason's category says "try again".

        ``retry_internal``: an internal error (category 60) counts as "try again" too — the
        caller allows it for the first ``INTERNAL_ERROR_RETRIES`` repeats of one call only.
        """
        found = reasons(body)
        process_id = _str_or_none(body.get("processId")) if isinstance(body, Mapping) else None
        process_id = self.clean(process_id)[:64] if process_id else None
        if found and all(is_transient_code(code) or (retry_internal and category(code) == INTERNAL_ERROR_CATEGORY)
                         for code, _ in found):
            return TransientError(f"{where}: Zuora asks to try again{self._detail(body)}",
                                  retry_after=wait_hint(headers))
        if found:
            code = next((c for c, _ in found if c), None)
            message = "; ".join(m for _, m in found if m) or f"HTTP {status}"
        else:
            code = None
            message = body.get("message") if isinstance(body, Mapping) else None
            message = message if isinstance(message, str) and message else f"HTTP {status}"
        return ZuoraRejected(self.clean(message), remote_code=code, process_id=process_id, http_status=status)

    # ------------------------------------------------------------------ OAuth

    def authenticate(self) -> None:
        """Fetch a token now unless one is held (``integration check``); the errors are the flows'."""
        self._auth_headers()

    def _auth_headers(self) -> dict[str, str]:
        token = self._token
        if token is None or self._clock() >= token[1]:
            with self._token_lock:  # one thread fetches; the others wait and reuse its token
                token = self._token
                if token is None or self._clock() >= token[1]:
                    if token is not None:
                        self._retire(token[0])
                    token = self._fetch_token()
                    self._token = token
        return {"Authorization": f"Bearer {token[0]}"}

    def _refresh_auth(self, used: Mapping[str, str]) -> bool:
        """A 401: forget the token that failed (unless another thread already replaced it); repeat once."""
        with self._token_lock:
            if self._token and used.get("Authorization") == f"Bearer {self._token[0]}":
                self._retire(self._token[0])
                self._token = None
        return True

    def _retire(self, access: str) -> None:
        """Remember a replaced token for scrubbing (an immutable tuple, so readers need no lock)."""
        self._old_tokens = (*self._old_tokens, access)[-4:]

    def _fetch_token(self) -> tuple[str, float]:
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        if self.entity_id:
            headers["Zuora-Entity-Ids"] = self.entity_id
        track = track_id(current_event_id.get())
        if track:
            headers["Zuora-Track-Id"] = track
        try:
            token = self._oauth.fetch_token(self.base_url + _TOKEN_ENDPOINT, grant_type="client_credentials",
                                            headers=headers)
        except OAuthError as exc:
            raise AuthFailed(f"Zuora POST {_TOKEN_ENDPOINT}: token refused ({self.clean(exc.error)})") from None
        except ValueError:
            raise MalformedResponse(f"Zuora POST {_TOKEN_ENDPOINT}: response is not a JSON object") from None
        access = token.get("access_token")
        token_type = token.get("token_type")
        if not isinstance(access, str) or not access:
            raise MalformedResponse(f"Zuora POST {_TOKEN_ENDPOINT}: response has no access_token")
        if token_type is not None and str(token_type).lower() != "bearer":
            raise MalformedResponse(f"Zuora POST {_TOKEN_ENDPOINT}: token_type is not bearer")
        lifetime = _lifetime(token.get("expires_in"))
        margin = min(self.TOKEN_MARGIN, lifetime / 2)
        return access, self._clock() + lifetime - margin

    def _check_token_response(self, resp: requests.Response) -> requests.Response:
        """authlib compliance hook: classify the token endpoint's answer before authlib parses it.

        authlib would take a 401 ``{"message": ...}`` for a token (no ``error`` key), so the
        status is judged here: refused credentials are permanent, throttling and 5xx are not.
        """
        where = f"Zuora POST {_TOKEN_ENDPOINT}"
        status = resp.status_code
        if status in (400, 401, 403):
            raise AuthFailed(f"{where}: client credentials rejected (HTTP {status})")
        if is_transient_status(status):
            raise TransientError(f"{where}: HTTP {status}", retry_after=wait_hint(resp.headers))
        if not 200 <= status < 300:
            raise MalformedResponse(f"{where}: unexpected HTTP {status}")
        try:
            body = parse_json(resp)
        except ValueError:
            raise MalformedResponse(f"{where}: response is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise MalformedResponse(f"{where}: response has no access_token")
        return resp


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


def _has(body: Mapping, path: str) -> bool:
    node: Any = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) in (None, ""):
            return False
        node = node[part]
    return True


def _lifetime(expires_in: Any) -> float:
    """Seconds a token lives; 3600 when Zuora omits ``expires_in`` (its own example's default)."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return 3600.0
    return seconds if 0 <= seconds < 10**7 else 3600.0


def _str_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value) else None
