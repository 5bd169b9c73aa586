"""The operator console (CONTRACT §8): its blueprint, sign-in, and the rules every page follows.

- **Sign-in.** ``/console/login`` takes ``ADMIN_TOKEN`` (field ``token``). The session cookie is
  signed with ``INTEGRATION_SECRET_KEY`` (default: derived from ``ADMIN_TOKEN``), ``HttpOnly``,
  ``SameSite=Lax``, and ``Secure`` when the request came over HTTPS — as seen by the server, or as a
  proxy says in ``X-Forwarded-Proto`` when ``INTEGRATION_TRUST_PROXY=true`` (only then: a client can
  send that header itself). The session holds a fingerprint of ``ADMIN_TOKEN``, so rotating the
  token (or the key) signs everyone out. Failed sign-ins are logged and limited per client address,
  counted in the store, so the limit holds across every web process and host.
- **CSRF.** Flask-WTF's ``CSRFProtect`` checks every console POST (the login form included); a POST
  without a valid token changes nothing and is answered 400 with a page that says so. Over HTTPS it
  also wants a same-origin ``Referer`` (Flask-WTF's default; pages send ``Referrer-Policy: same-origin``).
- **Headers.** A strict Content-Security-Policy (own scripts and styles only, no inline code),
  ``X-Frame-Options: DENY``, ``nosniff``, HSTS over HTTPS and same-origin redirects on every response
  of the app (integration.web.security); no caching of pages that show account data. Jinja's
  autoescaping shows every value as text.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import (
    Blueprint,
    Flask,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect

from integration.config import Config
from integration.domain.times import utcnow
from integration.store import sign_ins
from integration.store.db import Database
from integration.store.tx import StoreUnavailable

log = logging.getLogger("integration.console")
bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")
csrf = CSRFProtect()

LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 300.0
PUBLIC_ENDPOINTS = {"console.login", "console.static"}


def _services():
    return current_app.extensions["integration"]


def secret_key(config: Config) -> bytes:
    """``INTEGRATION_SECRET_KEY``, or a key derived from ``ADMIN_TOKEN`` (never the token itself)."""
    if config.secret_key:
        return config.secret_key.reveal().encode()
    return hmac.new(config.admin_token.reveal().encode(), b"integration-console-session-key", hashlib.sha256).digest()


def token_fingerprint(config: Config) -> str:
    digest = hmac.new(config.admin_token.reveal().encode(), b"integration-console-session", hashlib.sha256)
    return digest.hexdigest()[:32]


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """``Secure`` on the cookie exactly when this request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure


class LoginLimiter:
    """At most ``attempts`` failed sign-ins per client address per ``window`` seconds, counted in the
    store (``integration.store.sign_ins``): across every web process and host, not per process."""

    def __init__(self, db: Database, attempts: int = LOGIN_ATTEMPTS, window: float = LOGIN_WINDOW_SECONDS,
                 clock: Callable[[], datetime] = utcnow):
        self.db, self.attempts, self.window, self.clock = db, attempts, timedelta(seconds=window), clock

    def blocked_for(self, address: str) -> float:
        """Seconds until ``address`` may try again (0: it may now)."""
        now = self.clock()
        newest = sign_ins.recent_failures(self.db, address, now - self.window, self.attempts)
        if len(newest) < self.attempts:
            return 0.0
        return max((newest[-1] + self.window - now).total_seconds(), 0.0)

    def failed(self, address: str) -> None:
        now = self.clock()
        sign_ins.record_failure(self.db, address, now, forget_before=now - self.window)

    def succeeded(self, address: str) -> None:
        sign_ins.clear(self.db, address)


def format_utc(value: str | datetime | None) -> str:
    """An ISO-8601 time (or datetime) as ``2026-03-01 12:30:05 UTC``; an em dash when there is none."""
    if not value:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def signed_in() -> bool:
    expected = token_fingerprint(_services().config)
    return hmac.compare_digest(str(session.get("auth", "")), expected)


@bp.before_request
def guard() -> ResponseReturnValue | None:
    """Every page but the login needs a session; every POST (the login too) a valid CSRF token."""
    if request.method == "POST":
        csrf.protect()
    if request.endpoint not in PUBLIC_ENDPOINTS and not signed_in():
        return redirect(url_for("console.login"))
    return None


@bp.after_request
def no_caching(response):
    """Pages show account data: never cached (the security headers are app-wide: integration.web.security)."""
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def csrf_failed(exc: CSRFError):
    log.warning("console form refused: CSRF check failed", extra={"path": request.path, "reason": exc.description})
    return render_template("console/error.html", title="Form expired or forged",
                           message="This form was refused because its security token is missing or invalid. "
                                   "Nothing was changed. Go back, reload the page and try again."), 400


@bp.errorhandler(StoreUnavailable)
def store_unavailable(exc):
    log.error("store unavailable during a console request", extra={"error": f"{type(exc).__name__}: {exc}"})
    message = "The store is busy or unavailable, so nothing was read or changed. Try again in a moment."
    return render_template("console/error.html", title="Store unavailable", message=message), 503


@bp.errorhandler(404)
def not_found(exc):
    message = "There is nothing at this address (an event that was pruned, or a mistyped link)."
    return render_template("console/error.html", title="Not found", message=message), 404


@bp.route("/login", methods=["GET", "POST"])
def login():
    limiter: LoginLimiter = current_app.extensions["console_login_limiter"]
    address = request.remote_addr or "unknown"
    error, status = None, 200
    if request.method == "POST":
        wait = limiter.blocked_for(address)
        token = request.form.get("token", "")
        if wait > 0:
            log.warning("console sign-in refused: too many failures", extra={"client": address})
            error, status = f"Too many failed sign-ins. Try again in {int(wait) + 1} seconds.", 429
        elif hmac.compare_digest(token.encode(), _services().config.admin_token.reveal().encode()):
            limiter.succeeded(address)
            session.clear()
            session.permanent = True
            session["auth"] = token_fingerprint(_services().config)
            log.info("console sign-in", extra={"client": address})
            return redirect(url_for("console.overview"))
        else:
            limiter.failed(address)
            log.warning("console sign-in failed", extra={"client": address})
            error, status = "That token is not the admin token.", 401
    return render_template("console/login.html", title="Sign in", error=error), status


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("console.login"))


def page(template: str, **context):
    """Render a console page with what every page shows (the navigation needs the endpoint)."""
    return render_template(f"console/{template}", **context)
