"""Reading an answer the same way for both APIs: which statuses are worth a repeat, and the fields a caller needs.

Each client decides what its remote's error shapes mean; what a status code means, and whether a
successful answer holds the fields a flow will read, is the same for both and lives here.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from integration.clients.pacing import wait_hint
from integration.domain.errors import MalformedResponse, TransientError


def is_transient_status(status: int) -> bool:
    """HTTP statuses worth another try: 408 (request timeout), 429 and every 5xx."""
    return status in (408, 429) or 500 <= status <= 599


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


def require(body: Any, path: str, where: str) -> Any:
    """``body[a][b]`` for ``path`` "a.b", or ``MalformedResponse`` naming the call and the field."""
    node = body
    for part in path.split("."):
        if not isinstance(node, Mapping) or node.get(part) in (None, ""):
            raise MalformedResponse(f"{where}: response has no {path}")
        node = node[part]
    return node
