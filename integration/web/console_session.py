"""The console's session cookie and the key that signs it (and the CSRF tokens).

- **The key** is ``INTEGRATION_SECRET_KEY`` when set; otherwise a random key generated once and kept
  in the store (``integration.store.service_keys``), the same for every process and host. It is never
  derived from ``ADMIN_TOKEN``: a key derived from the token would make every cookie the login page
  hands out a way to test guesses of the token offline, past every sign-in limit.
- **The key is read lazily**, when a console request first needs it: the app can be built before the
  store is migrated or reachable, and only the console ever needs a session. A store that cannot be
  read then is a 503 page (``guard`` asks again), never a 500.
- **Other paths get no session at all**: a webhook never touches the key, the store or a cookie.
"""
from __future__ import annotations

import hashlib
import hmac

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from integration.services import Services
from integration.store import service_keys
from integration.store.tx import StoreUnavailable

CONSOLE_PREFIX = "/console"


class SessionKey:
    """The console's signing key: ``INTEGRATION_SECRET_KEY``, or the store's, read once per process."""

    def __init__(self, services: Services):
        self.services = services
        self._stored: str | None = None

    def get(self) -> str:
        """The key; ``StoreUnavailable`` when it must come from a store that cannot be read now."""
        configured = self.services.config.secret_key
        if configured:
            return configured.reveal()
        if self._stored is None:
            self._stored = service_keys.get_or_create(self.services.db, service_keys.SESSION_KEY)
        return self._stored


def token_fingerprint(key: str, admin_token: str) -> str:
    """Which ``ADMIN_TOKEN`` a session was started under, so rotating the token ends it. Keyed with the
    session key: without the key it says nothing about the token, even to someone who reads it."""
    return hmac.new(key.encode(), b"admin-token:" + admin_token.encode(), hashlib.sha256).hexdigest()


def is_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, for console paths only, signed with ``SessionKey``; ``Secure``
    on the cookie exactly when this request came over HTTPS."""

    def __init__(self, key: SessionKey):
        self.key = key

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not is_console(request.path):
            return None  # Flask gives the request a null session: nothing outside the console uses one
        try:
            app.secret_key = self.key.get()
        except StoreUnavailable:
            return None  # console.guard asks for the key again and answers 503
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure
