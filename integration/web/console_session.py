"""The console's sessions, their cookie, and the key that signs it (and the CSRF tokens).

- **Sessions live on the server** (``integration.store.console_sessions``): the cookie carries a random
  session ID (and the CSRF token Flask-WTF keeps beside it); a session is signed in while its row is
  live and was started under the ``ADMIN_TOKEN`` configured now. Signing out deletes the row, so a copy
  of the cookie taken before is refused after; rotating the token or the key, or expiry, ends it too.
  A session ends 12 hours after sign-in, or after 2 hours without a request, whichever comes first.

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
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from integration.domain.times import utcnow
from integration.services import Services
from integration.store import console_sessions, service_keys
from integration.store.tx import StoreUnavailable

CONSOLE_PREFIX = "/console"
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=2)
TOUCH_EVERY = timedelta(minutes=1)
"""How stale ``last_seen_at`` may get before a request writes it again (not one write per page view)."""


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


class ConsoleSessions:
    """Start, check and end console sessions kept in the store."""

    def __init__(self, services: Services, key: SessionKey, *, lifetime: timedelta = SESSION_LIFETIME,
                 idle: timedelta = SESSION_IDLE, clock: Callable[[], datetime] = utcnow):
        self.services, self.key, self.lifetime, self.idle, self.clock = services, key, lifetime, idle, clock

    def _fingerprint(self) -> str:
        return token_fingerprint(self.key.get(), self.services.config.admin_token.reveal())

    def start(self) -> str:
        """A new session under the token configured now; its ID, for the cookie."""
        now, session_id = self.clock(), secrets.token_urlsafe(32)
        console_sessions.start(self.services.db, session_id, self._fingerprint(), now,
                               expires_at=now + min(self.lifetime, self.idle))
        return session_id

    def signed_in(self, session_id: object) -> bool:
        """Whether ``session_id`` (from the cookie) is a live session of the token configured now."""
        if not isinstance(session_id, str) or not session_id:
            return False
        db, now = self.services.db, self.clock()
        found = console_sessions.live(db, session_id, now)
        if found is None:
            return False
        if not hmac.compare_digest(found.token_fingerprint, self._fingerprint()):
            console_sessions.end(db, session_id)  # a rotated token: the session never comes back
            return False
        if now - found.last_seen_at >= TOUCH_EVERY:
            return console_sessions.touch(db, session_id, now, min(found.created_at + self.lifetime, now + self.idle))
        return True

    def end(self, session_id: object) -> None:
        if isinstance(session_id, str) and session_id:
            console_sessions.end(self.services.db, session_id)


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
