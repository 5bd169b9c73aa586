"""What a billing platform's webhook becomes inside the service: a refusal with its reason code, or an event.

WHY: each adapter verifies its own platform's signatures and reads its own envelope, but the web answers
every refusal the same way (CONTRACT §11: the reason code in the log line, the metric label and the 401
body) and records every event the same way. The reason codes are CONTRACT §11's.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

MISSING_SIGNATURE = "missing_signature"                    # the HMAC header, or a webhook-* header, absent or empty
MALFORMED_SIGNATURE_HEADER = "malformed_signature_header"  # present but not in the shape the scheme defines
TIMESTAMP_OUT_OF_TOLERANCE = "timestamp_out_of_tolerance"  # webhook-timestamp more than 5 minutes off
UNSUPPORTED_ALGORITHM = "unsupported_algorithm"            # only signatures of versions other than v1
SIGNATURE_MISMATCH = "signature_mismatch"                  # well-formed, but no signature matches the body


@dataclass(frozen=True)
class WebhookRejection:
    """Why a webhook's signature is refused: its reason code and a sentence the project wrote."""

    reason: str
    detail: str


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook as an internal event: what happened, to which object, in which delivery."""

    type: str                         # the internal event type (account.created, invoice.finalized…)
    object_id: str
    delivery_id: str                  # the platform's delivery ID ("" when it sends none)
    payload: Mapping[str, object] = field(default_factory=dict)


class WebhookVerifier(Protocol):
    """A platform's signature check, apart from its API client: the front door runs it in the server's
    event loop, before the app, and it needs only the webhook's secret (``billing.factory.webhook_verifier``)."""

    def check_head(self, headers: Mapping[str, str]) -> WebhookRejection | None:
        """What the signature headers alone refuse (lower-case header names), or None."""
        ...

    def verify(self, headers: Mapping[str, str], body: bytes) -> WebhookRejection | None:
        """The signature over the raw body: a rejection, or None when it is the platform's."""
        ...
