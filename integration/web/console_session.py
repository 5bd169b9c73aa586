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
- **Known devices.** A successful sign-in also leaves a *known-device* cookie (30 days, bound by an HMAC
  under the session key to the ``ADMIN_TOKEN`` of the day): that browser's later sign-in attempts count
  in a bucket of their own, so an attacker flooding its address cannot lock it out
  (integration.web.sign_in_limit says why).
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import Flask, Request, Response, request
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
DEVICE_COOKIE = "console_device"
DEVICE_LIFETIME = timedelta(days=30)
_DEVICE = re.compile(r"^v1\.([A-Za-z0-9_-]{22,64})\.([0-9]{1,12})\.([0-9a-f]{64})$")


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


class KnownDevices:
    """Browsers that have signed in before (OWASP's "device cookies"): a cookie
    ``v1.<random id>.<issued, unix seconds>.<HMAC>`` whose HMAC, under the session key, covers the id,
    the time and the fingerprint of the ``ADMIN_TOKEN`` it was issued under. Only a sign-in with the
    right token issues one; rotating the token or the key voids them all; anything else is no device."""

    def __init__(self, services: Services, key: SessionKey, *, lifetime: timedelta = DEVICE_LIFETIME,
                 clock: Callable[[], datetime] = utcnow):
        self.services, self.key, self.lifetime, self.clock = services, key, lifetime, clock

    def _mac(self, device_id: str, issued: str) -> str:
        key = self.key.get()
        fingerprint = token_fingerprint(key, self.services.config.admin_token.reveal())
        message = f"known-device|{device_id}|{issued}|{fingerprint}".encode()
        return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()

    def remember(self, response: Response) -> None:
        """Give the browser that just signed in a known-device cookie."""
        device_id, issued = secrets.token_urlsafe(24), str(int(self.clock().timestamp()))
        response.set_cookie(DEVICE_COOKIE, f"v1.{device_id}.{issued}.{self._mac(device_id, issued)}",
                            max_age=int(self.lifetime.total_seconds()), path=CONSOLE_PREFIX, httponly=True,
                            samesite="Lax", secure=request.is_secure)

    def bucket(self, cookie: str | None) -> str | None:
        """The sign-in bucket of a valid known-device cookie; None for no cookie or anything forged,
        expired, or issued under another token or key."""
        found = _DEVICE.match(cookie or "")
        if found is None:
            return None
        device_id, issued, mac = found.groups()
        age = self.clock().timestamp() - int(issued)
        if not -60 <= age <= self.lifetime.total_seconds():
            return None
        if not hmac.compare_digest(mac, self._mac(device_id, issued)):
            return None
        return "device:" + hashlib.sha256(device_id.encode()).hexdigest()[:32]


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
