"""The errors a sync can end in, and whether the inbox should try again.

Every failure that reaches the inbox is one of these. A ``TransientError`` is
rescheduled with backoff; any other ``SyncError`` is permanent and lands on the
failure list under its CONTRACT §5 ``code``. Messages never carry secrets: the
clients build them from remote responses and our own field names only.
"""
from __future__ import annotations

# CONTRACT §5 failure codes.
ZUORA_REJECTED = "ZUORA_REJECTED"
BILLING_REJECTED = "BILLING_REJECTED"
MISSING_MAPPING = "MISSING_MAPPING"
INVALID_DATA = "INVALID_DATA"
AUTH_FAILED = "AUTH_FAILED"
RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"
UNKNOWN = "UNKNOWN"
FAILURE_CODES = (ZUORA_REJECTED, BILLING_REJECTED, MISSING_MAPPING, INVALID_DATA, AUTH_FAILED, RETRIES_EXHAUSTED,
                 UNKNOWN)


class SyncError(Exception):
    """Base of every error a flow may raise; permanent unless a subclass says otherwise."""

    code: str = UNKNOWN
    retryable: bool = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TransientError(SyncError):
    """Trouble that may pass: timeouts, connection errors, 429, 5xx, Zuora categories 50/61/70/99.

    ``retry_after`` (seconds), when the remote said how long to wait, is the wait before the
    inbox's next attempt (exactly: sooner is a certain refusal, later is longer than asked).
    """

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ZuoraRejected(SyncError):
    """Zuora refused the request: a 4xx, or HTTP 200 with ``success: false``."""

    code = ZUORA_REJECTED

    def __init__(self, message: str, remote_code: str | None = None, process_id: str | None = None,
                 http_status: int | None = None):
        detail = f"{remote_code}: {message}" if remote_code else message
        if process_id:
            detail += f" (processId {process_id})"
        super().__init__(detail)
        self.remote_code = remote_code
        self.remote_message = message
        self.process_id = process_id
        self.http_status = http_status


class BillingRejected(SyncError):
    """The billing platform refused the request with ``{"message": ...}``."""

    code = BILLING_REJECTED

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        self.remote_message = message
        self.http_status = http_status


class BillingConflict(BillingRejected):
    """A create was refused because an object with that ID exists: fetch and link instead."""


class AuthFailed(SyncError):
    """Credentials were rejected even after a fresh token."""

    code = AUTH_FAILED


class InvalidData(SyncError):
    """The source object cannot be represented on the other side; ``field`` names the culprit."""

    code = INVALID_DATA

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class MissingMapping(SyncError):
    """The object's account is not linked yet; the event waits for that account."""

    code = MISSING_MAPPING

    def __init__(self, message: str, waiting_for: str):
        super().__init__(message)
        self.waiting_for = waiting_for


class MalformedResponse(SyncError):
    """A remote answered with something we cannot use (not JSON, a missing field, a wrong type)."""

    code = UNKNOWN
