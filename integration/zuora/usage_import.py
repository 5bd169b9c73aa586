"""A usage upload (``POST /v1/usage``, one CSV imported atomically): the file checked before it goes,
the import ID taken from Zuora's answer, and the wait for the import to finish.

The import ID is read from ``checkImportStatus`` and the status URL rebuilt from it, so a remote
cannot make us fetch an arbitrary path.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from integration.clients.http import header_value
from integration.domain.errors import InvalidData, MalformedResponse, TransientError, ZuoraRejected
from integration.zuora.answers import reasons, str_or_none

USAGE_FILE_MAX_BYTES = 4_194_304
USAGE_FILENAME_MAX = 50
IMPORT_STATUS_PATH = re.compile(r"^/v1/usage/([A-Za-z0-9_-]{1,64})/status$")


def checked_file(csv_bytes: bytes, filename: str) -> str:
    """The file's name as it goes in the multipart part, once the file is one Zuora would take."""
    if not isinstance(csv_bytes, (bytes, bytearray)) or not csv_bytes:
        raise InvalidData("csv_bytes", "must be non-empty bytes")
    if len(csv_bytes) > USAGE_FILE_MAX_BYTES:
        raise InvalidData("csv_bytes", f"usage file is {len(csv_bytes)} bytes; Zuora accepts at most "
                                       f"{USAGE_FILE_MAX_BYTES}")
    name = header_value("filename", filename, max_length=USAGE_FILENAME_MAX)
    if any(ch in name for ch in '/\\"'):
        raise InvalidData("filename", "must not contain / \\ or \"")
    return name


def import_id(check_import_status: Any, endpoint: str) -> str:
    """The import ID in ``checkImportStatus`` (``/v1/usage/<id>/status``), or ``MalformedResponse``."""
    match = IMPORT_STATUS_PATH.match(str(check_import_status))
    if not match:
        raise MalformedResponse(f"Zuora POST {endpoint}: checkImportStatus is not /v1/usage/<id>/status")
    return match.group(1)


def bare_id(import_id_or_path: str) -> str:
    """An import ID, whether given as the ID or as its status path."""
    match = IMPORT_STATUS_PATH.match(import_id_or_path) if isinstance(import_id_or_path, str) else None
    return match.group(1) if match else import_id_or_path


def wait(poll: Callable[[], dict[str, Any]], import_id: str, endpoint: str, *, clock: Callable[[], float],
         sleep: Callable[[float], None], clean: Callable[[Any], str], timeout: float, poll_interval: float
         ) -> str:
    """Poll until Zuora says ``Completed``; that status as Zuora spelled it. The rules of the wait are
    ``ZuoraClient.wait_for_usage_import``'s docstring."""
    deadline = clock() + timeout
    pause = poll_interval / 10
    while True:
        body = poll()
        status = body.get("importStatus", body.get("status"))
        if not isinstance(status, str):
            raise MalformedResponse(f"Zuora GET {endpoint}: response has no importStatus")
        state = status.strip().lower()
        if state == "completed":
            return status
        if state in ("failed", "canceled", "cancelled"):
            raise ZuoraRejected(reason(body, import_id, status, clean),
                                process_id=str_or_none(body.get("processId")), http_status=200)
        if state not in ("pending", "processing"):
            raise MalformedResponse(f"Zuora GET {endpoint}: unknown importStatus {clean(status)!r}")
        if clock() + pause > deadline:
            raise TransientError(f"Zuora usage import {import_id} still {status} after {timeout:g} s",
                                 retry_after=poll_interval)
        sleep(pause)
        pause = min(pause * 2, poll_interval)


def reason(body: dict[str, Any], import_id: str, status: str, clean: Callable[[Any], str]) -> str:
    """Why an import failed, in the import's own words when it gives them."""
    for key in ("message", "statusReason", "StatusReason", "importStatusMessage"):
        said = body.get(key)
        if isinstance(said, str) and said.strip():
            return clean(said)
    messages = [m for _, m in reasons(body) if m]
    if messages:
        return clean("; ".join(messages))
    return f"usage import {import_id} {status}"
