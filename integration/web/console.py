"""The operator console (CONTRACT §8): its blueprint, sign-in, and the rules every page follows.

- **Sign-in.** ``/console/login`` takes ``ADMIN_TOKEN`` (field ``token``) and starts a session kept in
  the store (integration.web.console_session): sign-out, rotating the token or the key, and expiry
  end it everywhere, even for a copied cookie. The cookie is signed with ``INTEGRATION_SECRET_KEY``
  (default: a random key kept in the store, never derived from ``ADMIN_TOKEN``), ``HttpOnly``,
  ``SameSite=Lax``, and ``Secure`` when the request came over HTTPS — as seen by the server, or as a
  proxy says in ``X-Forwarded-Proto`` when ``INTEGRATION_TRUST_PROXY=true`` (only then: a client can
  send that header itself). Sign-in attempts are logged and limited, counted in the store, so the limit
  holds across every web process and host; integration.web.sign_in_limit has the rule (per address,
  per known browser, and a blocked bucket refuses even the right token).
- **CSRF.** Flask-WTF's ``CSRFProtect`` checks every console POST (the login form included); a POST
  without a valid token changes nothing and is answered 400 with a page that says so. Over HTTPS it
  also wants a same-origin ``Referer`` (Flask-WTF's default; pages send ``Referrer-Policy: same-origin``).
- **Headers.** A strict Content-Security-Policy (own scripts and styles only, no inline code),
  ``X-Frame-Options: DENY``, ``nosniff``, HSTS over HTTPS and same-origin redirects on every response
  of the app (integration.web.security); no caching of pages that show account data. Jinja's
  autoescaping shows every value as text.
"""
from __future__ import annotations

import hmac
import logging
from datetime import datetime

from flask import (
    Blueprint,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect

from integration.store.tx import StoreUnavailable
from integration.web.console_session import DEVICE_COOKIE, ConsoleSessions, KnownDevices
from integration.web.sign_in_limit import SignInLimiter, address_bucket

log = logging.getLogger("integration.console")
bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates",
               static_folder="static", static_url_path="/static")
csrf = CSRFProtect()

LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 300.0
PUBLIC_ENDPOINTS = {"console.login", "console.static"}


def _services():
    return current_app.extensions["integration"]


def _sessions() -> ConsoleSessions:
    return current_app.extensions["console_sessions"]


def format_utc(value: str | datetime | None) -> str:
    """An ISO-8601 time (or datetime) as ``2026-03-01 12:30:05 UTC``; an em dash when there is none."""
    if not value:
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def signed_in() -> bool:
    return _sessions().signed_in(session.get("sid"))


@bp.before_request
def guard() -> ResponseReturnValue | None:
    """Every page but the login needs a session; every POST (the login too) a valid CSRF token."""
    _sessions().key.get()  # a store that cannot give the key: the 503 page
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
    """The sign-in form. Each POST is counted before its token is checked (integration.web.sign_in_limit):
    in its known-device bucket when the browser has signed in before, else in its address's."""
    limiter: SignInLimiter = current_app.extensions["sign_in_limiter"]
    devices: KnownDevices = current_app.extensions["console_known_devices"]
    address = limiter.client_address(_services().config.trust_proxy)
    error, status, wait = None, 200, 0
    if request.method == "POST":
        device = devices.bucket(request.cookies.get(DEVICE_COOKIE))
        bucket = device or address_bucket(address)
        who = {"client": address, "known_device": device is not None}
        ticket = limiter.attempt(bucket)
        wait = ticket.wait
        if wait:
            log.warning("console sign-in refused: too many failures", extra=who)
            error, status = f"Too many failed sign-ins. Try again in {wait} seconds.", 429
        elif hmac.compare_digest(request.form.get("token", "").encode(),
                                 _services().config.admin_token.reveal().encode()):
            limiter.succeeded(ticket)
            _sessions().end(session.get("sid"))  # signing in again replaces the session, never adds one
            session.clear()
            session.permanent = True
            session["sid"] = _sessions().start()
            log.info("console sign-in", extra=who)
            response = redirect(url_for("console.overview"))
            devices.remember(response)
            return response
        else:
            log.warning("console sign-in failed", extra=who)
            error, status = "That token is not the admin token.", 401
    response = make_response(render_template("console/login.html", title="Sign in", error=error), status)
    if wait:
        response.headers["Retry-After"] = str(wait)
    return response


@bp.post("/logout")
def logout():
    """End the session in the store, so no copy of its cookie works any more, then forget the cookie."""
    _sessions().end(session.get("sid"))
    session.clear()
    return redirect(url_for("console.login"))


def page(template: str, **context):
    """Render a console page with what every page shows (the navigation needs the endpoint)."""
    return render_template(f"console/{template}", **context)
