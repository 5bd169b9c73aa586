"""Zuora's OAuth: one client-credentials token per process, shared by every thread, replaced before it dies.

Zuora asks clients to "avoid generating a new token for each call" and rate-limits the token
endpoint per IP, so ``ZuoraToken`` holds one token, lets exactly one thread fetch its successor
shortly before it expires (``TOKEN_MARGIN``), and drops it on a 401 so the next call fetches anew.
authlib speaks the protocol; the request itself goes through the client's own metered ``_send``.
Tokens it has replaced are remembered for scrubbing, so a late echo of one never leaks it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.client import OAuth2Client

from integration.clients.answers import is_transient_status
from integration.clients.bodies import parse_json
from integration.clients.pacing import wait_hint
from integration.domain.errors import AuthFailed, MalformedResponse, TransientError

TOKEN_ENDPOINT = "/oauth/token"  # noqa: S105 - a URL path, not a password

TOKEN_MARGIN = 60.0
"""Seconds before expiry at which the token is replaced, so no call goes out with a dying one."""


class _TokenClient(OAuth2Client):  # type: ignore[misc]  # authlib ships no types
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
        return self._send("POST", TOKEN_ENDPOINT, url, 1, **kwargs)


class ZuoraToken:
    """The process's one Zuora access token: fetched on first use, replaced ``TOKEN_MARGIN`` early.

    ``send`` is the client's ``_send`` (one metered exchange), ``clock`` its clock, ``clean`` its
    scrubber for text that reaches an exception.
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, *,
                 send: Callable[..., requests.Response], clock: Callable[[], float],
                 clean: Callable[[Any], str]):
        self._token_url = token_url
        self._clock = clock
        self._clean = clean
        self._oauth = _TokenClient(_TokenTransport(send), client_id=client_id, client_secret=client_secret,
                                   token_endpoint_auth_method="client_secret_post")  # noqa: S106 - a method name
        self._oauth.register_compliance_hook("access_token_response", check_token_response)
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None  # (access token, replace-after on clock)
        self._old_tokens: tuple[str, ...] = ()  # still scrubbed: a late echo must not leak them

    def header(self, request_headers: Callable[[], dict[str, str]]) -> dict[str, str]:
        """``Authorization`` for the next call, fetching a token (with ``request_headers()``) when none is fresh."""
        token = self._token
        if token is None or self._clock() >= token[1]:
            with self._lock:  # one thread fetches; the others wait and reuse its token
                token = self._token
                if token is None or self._clock() >= token[1]:
                    if token is not None:
                        self._retire(token[0])
                    token = self._fetch(request_headers())
                    self._token = token
        return {"Authorization": f"Bearer {token[0]}"}

    def forget(self, used: Mapping[str, str]) -> None:
        """A 401: forget the token that failed, unless another thread already replaced it."""
        with self._lock:
            if self._token and used.get("Authorization") == f"Bearer {self._token[0]}":
                self._retire(self._token[0])
                self._token = None

    def secrets(self) -> tuple[str, ...]:
        """Every token this process held lately: the current one and the last few replaced."""
        token = self._token
        return (*(token[:1] if token else ()), *self._old_tokens)

    def _retire(self, access: str) -> None:
        """Remember a replaced token for scrubbing (an immutable tuple, so readers need no lock)."""
        self._old_tokens = (*self._old_tokens, access)[-4:]

    def _fetch(self, headers: dict[str, str]) -> tuple[str, float]:
        try:
            token = self._oauth.fetch_token(self._token_url, grant_type="client_credentials", headers=headers)
        except OAuthError as exc:
            raise AuthFailed(f"Zuora POST {TOKEN_ENDPOINT}: token refused ({self._clean(exc.error)})") from None
        except ValueError:
            raise MalformedResponse(f"Zuora POST {TOKEN_ENDPOINT}: response is not a JSON object") from None
        access = token.get("access_token")
        token_type = token.get("token_type")
        if not isinstance(access, str) or not access:
            raise MalformedResponse(f"Zuora POST {TOKEN_ENDPOINT}: response has no access_token")
        if token_type is not None and str(token_type).lower() != "bearer":
            raise MalformedResponse(f"Zuora POST {TOKEN_ENDPOINT}: token_type is not bearer")
        lifetime = _lifetime(token.get("expires_in"))
        margin = min(TOKEN_MARGIN, lifetime / 2)
        return access, self._clock() + lifetime - margin


def check_token_response(resp: requests.Response) -> requests.Response:
    """authlib compliance hook: classify the token endpoint's answer before authlib parses it.

    authlib would take a 401 ``{"message": ...}`` for a token (no ``error`` key), so the
    status is judged here: refused credentials are permanent, throttling and 5xx are not.
    """
    where = f"Zuora POST {TOKEN_ENDPOINT}"
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


def _lifetime(expires_in: Any) -> float:
    """Seconds a token lives; 3600 when Zuora omits ``expires_in`` (its own example's default)."""
    try:
        seconds = float(expires_in)
    except (TypeError, ValueError):
        return 3600.0
    return seconds if 0 <= seconds < 10**7 else 3600.0
