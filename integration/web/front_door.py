"""Who may knock: the webhooks' credential and signature checks, and the refusal codes they answer with.

The checks are written once and run twice. ``integration serve``'s worker runs ``FrontDoor.check_head`` in
gunicorn's event loop as soon as a request head is complete, before a byte of the body is read, so a caller
without credentials, or with a missing, malformed or stale signature, is refused without a thread and without
sending its body (``integration.web.gunicorn_worker``). The views in ``webhooks.py`` run the same
``check_head`` again (under the Flask test client, or any other server, it is their only run) and then
``check_body``, which needs the body: the HMAC or the Standard Webhooks signature itself. So nothing here
touches the store, the Flask request or anything that can block: it is called from an event loop.

Every refusal carries one code per cause (CONTRACT §11), the same in the log line, in the ``reason`` label of
``integration_webhook_refused_total`` and in a 401 body's ``reason``; its ``detail`` is a sentence written
here, never a library's exception text (standardwebhooks' wording changed between releases, and a client's
tooling or an operator's alert may key on ours). The billing platform's signature is its adapter's to check
(integration.billing: Togai's Standard Webhooks headers are read there, cause by cause); this module turns its
verdict into the same refusal as ever.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from integration import metrics
from integration.billing.factory import webhook_verifier
from integration.billing.webhook import (
    MALFORMED_SIGNATURE_HEADER,
    MISSING_SIGNATURE,
    SIGNATURE_MISMATCH,
    TIMESTAMP_OUT_OF_TOLERANCE,
    UNSUPPORTED_ALGORITHM,
)
from integration.config import HMAC_ALGORITHMS, Config
from integration.web.payloads import MAX_BODY

log = logging.getLogger("integration.web")

ZUORA_ROUTE = "/webhooks/zuora"
BILLING_ROUTE = "/webhooks/billing"
BASIC_CHALLENGE = 'Basic realm="zuora-callouts"'
_OWS = " \t"  # HTTP's optional whitespace, the only whitespace a header value may be trimmed of

# The refusal codes: one per cause. A 401's body carries its code as ``reason``; for the other statuses
# the ``error`` itself is the cause (invalid_payload, payload_too_large, …) and the ``reason`` label.
MISSING_CREDENTIALS = "missing_credentials"                # no Authorization header
MALFORMED_CREDENTIALS = "malformed_credentials"            # not "Basic <base64 of user:password>"
WRONG_CREDENTIALS = "wrong_credentials"                    # a user name or password that is not the configured one
# missing_signature, malformed_signature_header, timestamp_out_of_tolerance, unsupported_algorithm and
# signature_mismatch: integration.billing.webhook (the billing adapters decide them; the Zuora HMAC here too)
REQUEST_TIMEOUT = "request_timeout"                        # the request did not arrive within the deadline
REFUSAL_CODES = (MISSING_CREDENTIALS, MALFORMED_CREDENTIALS, WRONG_CREDENTIALS, MISSING_SIGNATURE,
                 MALFORMED_SIGNATURE_HEADER, TIMESTAMP_OUT_OF_TOLERANCE, UNSUPPORTED_ALGORITHM, SIGNATURE_MISMATCH)


@dataclass(frozen=True)
class Refusal:
    """A refused webhook: ``status`` with the JSON body ``body()`` and ``headers``; ``reason`` is the cause."""

    status: int
    error: str
    reason: str
    detail: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """§4's shape; a 401 adds its cause as ``reason`` between the two (CONTRACT §11)."""
        body: dict[str, Any] = {"error": self.error}
        if self.status == 401:
            body["reason"] = self.reason
        body["detail"] = self.detail
        return body


def refusal(status: int, error: str, detail: Any, reason: str | None = None,
            headers: Mapping[str, str] | None = None) -> Refusal:
    return Refusal(status, error, reason or error, detail, dict(headers or {}))


def record_refusal(route: str, refused: Refusal, fields: list[str] | None = None) -> None:
    """Log the refusal and count it in ``integration_webhook_refused_total{route, reason}``. The log line names
    the fields that were wrong, never their values, the body or a credential (details carry none either)."""
    metrics.WEBHOOK_REFUSED.labels(route=route, reason=refused.reason).inc()
    log.warning("webhook refused", extra={"route": route, "status": refused.status, "reason": refused.reason,
                                          **({"fields": fields} if fields else {})})


def mimetype(headers: Mapping[str, str]) -> str:
    """The media type of ``Content-Type`` without its parameters, lower case (werkzeug's ``mimetype``)."""
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/")
                                                and media_type.endswith("+json"))


def too_large() -> Refusal:
    return refusal(413, "payload_too_large", f"the body may be at most {MAX_BODY} bytes")


def parse_basic(value: str) -> tuple[bytes, bytes] | None:
    """(user, password) from an ``Authorization: Basic …`` value; None when it is not one."""
    scheme, _, encoded = value.strip(_OWS).partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(_OWS), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


class FrontDoor:
    """The webhook checks for one configuration; shared by the views and the server's event loop."""

    def __init__(self, config: Config, clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self._billing = webhook_verifier(config, self.clock)

    # -- which requests ------------------------------------------------------------------------------

    @staticmethod
    def route(method: str, path: str) -> str | None:
        """The webhook route a request goes to (as Flask would route it), or None for any other request."""
        if method.upper() != "POST":
            return None
        decoded = unquote(path)
        return decoded if decoded in (ZUORA_ROUTE, BILLING_ROUTE) else None

    # -- before the body -----------------------------------------------------------------------------

    def check_head(self, route: str, headers: Mapping[str, str], content_length: int | None) -> Refusal | None:
        """The first refusal the head alone decides, in the order the view applies them, or None.

        ``headers`` has lower-case names, repeated fields joined with commas (as the WSGI environ has them).
        """
        if route == ZUORA_ROUTE and self.config.callout_basic_auth and (refused := self._basic(headers)):
            return refused
        if not is_json(mimetype(headers)):
            return refusal(415, "unsupported_media_type", "the body must be application/json")
        if content_length is not None and content_length > MAX_BODY:
            return too_large()
        if route == ZUORA_ROUTE and self.config.zuora_callout_hmac_secret:
            return self._hmac_header(headers)[0]
        if route == BILLING_ROUTE:
            return self._billing_signature(headers)
        return None

    def _basic(self, headers: Mapping[str, str]) -> Refusal | None:
        def unauthorized(reason: str, detail: str) -> Refusal:
            return refusal(401, "unauthorized", detail, reason, {"WWW-Authenticate": BASIC_CHALLENGE})

        header = headers.get("authorization", "")
        if not header.strip(_OWS):
            return unauthorized(MISSING_CREDENTIALS, "Basic credentials are required")
        credentials = parse_basic(header)
        if credentials is None:
            return unauthorized(MALFORMED_CREDENTIALS,
                                "the Authorization header must be Basic with base64 of user:password")
        user, password = credentials
        configured = self.config.zuora_callout_password
        user_ok = hmac.compare_digest(user, (self.config.zuora_callout_username or "").encode())
        password_ok = hmac.compare_digest(password, configured.reveal().encode() if configured else b"")
        if not (user_ok and password_ok):
            return unauthorized(WRONG_CREDENTIALS, "the Basic credentials are not the configured ones")
        return None

    def _hmac_header(self, headers: Mapping[str, str]) -> tuple[Refusal | None, bytes]:
        """(a refusal, b"") or (None, the signature the header carries, decoded)."""
        name = self.config.zuora_callout_hmac_header
        given = headers.get(name.lower(), "").strip(_OWS)
        if not given:
            return refusal(401, "invalid_signature", f"the {name} header is required", MISSING_SIGNATURE), b""
        size = hashlib.new(HMAC_ALGORITHMS[self.config.zuora_callout_hmac_algorithm]).digest_size
        try:
            if self.config.zuora_callout_hmac_format == "HEX":
                if not re.fullmatch(r"[0-9a-fA-F]+", given):
                    raise ValueError
                decoded = bytes.fromhex(given)
            else:
                decoded = base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != size:
            detail = (f"the {name} header must be the {self.config.zuora_callout_hmac_format.lower()} "
                      f"{self.config.zuora_callout_hmac_algorithm} HMAC of the body")
            return refusal(401, "invalid_signature", detail, MALFORMED_SIGNATURE_HEADER), b""
        return None, decoded

    def _billing_signature(self, headers: Mapping[str, str], body: bytes | None = None) -> Refusal | None:
        """The billing platform's signature check (its adapter's: integration.billing), as a 401 refusal."""
        rejected = (self._billing.check_head(headers) if body is None
                    else self._billing.verify(headers, body))
        return None if rejected is None else refusal(401, "invalid_signature", rejected.detail, rejected.reason)

    # -- for the server, in its event loop ---------------------------------------------------------------

    def before_body(self, method: str, path: str, headers: Mapping[str, str],
                    content_length: int | None) -> Refusal | None:
        """``check_head`` for a webhook request whose head is complete and whose body is not yet read,
        logged and counted when it refuses; None for a request to any other route (the view decides)."""
        route = self.route(method, path)
        refused = self.check_head(route, headers, content_length) if route else None
        if route and refused:
            record_refusal(route, refused)
        return refused

    def refused_by_server(self, method: str, path: str, status: int, code: str, detail: str) -> Refusal | None:
        """A refusal the server decided before the view ran (408 too slow, 413 too large, 400 a malformed
        chunked body), as the webhook's own refusal, logged and counted; None for any other route."""
        route = self.route(method, path)
        if route is None:
            return None
        refused = too_large() if status == 413 else refusal(status, code, detail)
        record_refusal(route, refused)
        return refused

    # -- with the body -------------------------------------------------------------------------------

    def check_body(self, route: str, headers: Mapping[str, str], body: bytes) -> Refusal | None:
        """After ``check_head`` passed: the signature over ``body``; a ``signature_mismatch`` refusal or None.
        Every comparison is constant-time."""
        if route == ZUORA_ROUTE and self.config.zuora_callout_hmac_secret:
            refused, given = self._hmac_header(headers)
            if refused:
                return refused
            expected = hmac.new(self.config.zuora_callout_hmac_secret.reveal().encode(), body,
                                HMAC_ALGORITHMS[self.config.zuora_callout_hmac_algorithm]).digest()
            if not hmac.compare_digest(given, expected):
                return refusal(401, "invalid_signature",
                               f"the {self.config.zuora_callout_hmac_header} HMAC does not match the body",
                               SIGNATURE_MISMATCH)
        if route == BILLING_ROUTE:
            return self._billing_signature(headers, body)
        return None
