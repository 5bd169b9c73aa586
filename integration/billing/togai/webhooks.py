"""Togai's webhooks: Standard Webhooks signatures and the event envelope.

Signatures (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``): each refusal names its own cause
(integration.billing.webhook's reason codes, CONTRACT §11), decided here, never by a library's exception
text; standardwebhooks only computes the expected signature. Every comparison is constant-time.

Envelope: ``{"type", "data": {"id"}}`` with the delivery ID in ``webhook-id``: a pointer, never the data.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

from integration.billing.webhook import (
    MALFORMED_SIGNATURE_HEADER,
    MISSING_SIGNATURE,
    SIGNATURE_MISMATCH,
    TIMESTAMP_OUT_OF_TOLERANCE,
    UNSUPPORTED_ALGORITHM,
    WebhookEvent,
    WebhookRejection,
)

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
DELIVERY_HEADER = "webhook-id"
TIMESTAMP_TOLERANCE = 5 * 60  # seconds either way, as Standard Webhooks' reference verifiers
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_VERSION = re.compile(r"v[0-9][0-9a-z]*")
_OWS = " \t"  # HTTP's optional whitespace, the only whitespace a header value may be trimmed of


class TogaiWebhooks:
    """Verifies Togai's Standard-Webhooks signatures with the configured secret."""

    def __init__(self, secret: str, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._webhook = Webhook(secret)

    def check_head(self, headers: Mapping[str, str]) -> WebhookRejection | None:
        """What the signature headers alone refuse (lower-case names), or None."""
        return self._signatures(headers)[0]

    def _signatures(self, headers: Mapping[str, str]) -> tuple[WebhookRejection | None, list[bytes]]:
        """(a rejection, []) or (None, the v1 signatures of ``webhook-signature``, decoded)."""
        def invalid(reason: str, detail: str) -> tuple[WebhookRejection, list[bytes]]:
            return WebhookRejection(reason, detail), []

        missing = [name for name in SIGNATURE_HEADERS if not headers.get(name, "").strip(_OWS)]
        if missing:
            return invalid(MISSING_SIGNATURE, "the webhook-id, webhook-timestamp and webhook-signature headers "
                                              f"are required; missing: {', '.join(missing)}")
        timestamp = headers["webhook-timestamp"].strip(_OWS)
        if not _TIMESTAMP.fullmatch(timestamp):
            return invalid(MALFORMED_SIGNATURE_HEADER, "webhook-timestamp must be whole seconds since the epoch")
        if abs(self.clock() - int(timestamp)) > TIMESTAMP_TOLERANCE:
            return invalid(TIMESTAMP_OUT_OF_TOLERANCE,
                           f"webhook-timestamp is more than {TIMESTAMP_TOLERANCE // 60} minutes from now")
        signatures = []
        for entry in filter(None, headers["webhook-signature"].split(" ")):
            version, comma, encoded = entry.partition(",")
            try:
                if not (comma and _VERSION.fullmatch(version)):
                    raise ValueError
                decoded = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                return invalid(MALFORMED_SIGNATURE_HEADER,
                               "webhook-signature must be space-separated <version>,<base64 signature> entries")
            if version == "v1":
                signatures.append(decoded)
        if not signatures:
            return invalid(UNSUPPORTED_ALGORITHM, "webhook-signature has no v1 (HMAC-SHA256) signature")
        return None, signatures

    def verify(self, headers: Mapping[str, str], body: bytes) -> WebhookRejection | None:
        """The signature over ``body``: a rejection (the head's, or ``signature_mismatch``) or None."""
        refused, signatures = self._signatures(headers)
        if refused:
            return refused
        moment = datetime.fromtimestamp(int(headers["webhook-timestamp"].strip(_OWS)), tz=timezone.utc)
        signed = self._webhook.sign(headers["webhook-id"], moment, body)
        expected = base64.b64decode(signed.partition(",")[2])
        # every entry is compared (no early exit), so the time taken does not tell which one matched
        if not [s for s in signatures if hmac.compare_digest(s, expected)]:
            return WebhookRejection(SIGNATURE_MISMATCH, "no webhook-signature matches the body with the "
                                                        "configured secret")
        return None


def webhook_event(delivery_id: str, envelope: Mapping[str, object]) -> WebhookEvent:
    """A validated envelope (``{"type", "data": {"id"}}``) as an internal event; Togai's event types are
    the internal ones."""
    data = envelope["data"]
    object_id = data.get("id") if isinstance(data, Mapping) else None
    return WebhookEvent(type=str(envelope["type"]), object_id=str(object_id), delivery_id=delivery_id,
                        payload={"webhook_id": delivery_id})
