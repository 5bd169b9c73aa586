"""Mounting the operator console on the Flask app (see integration.web.console for its rules)."""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from integration.services import Services
from integration.web import console, console_actions, console_pages  # noqa: F401 - their routes join console.bp
from integration.web.console_session import (
    SESSION_LIFETIME,
    ConsoleSessionInterface,
    ConsoleSessions,
    KnownDevices,
    SessionKey,
)
from integration.web.sign_in_limit import SignInLimiter


def init_app(app: Flask, services: Services) -> None:
    """Mount the console: session and CSRF settings, the proxy rule, its blueprint and its filters.

    The signing key is not read here but on the first console request (``SessionKey``): building the
    app must not need a migrated, reachable store."""
    config, db = services.config, services.db
    key = SessionKey(services)
    app.extensions["console_sessions"] = ConsoleSessions(services, key)
    app.session_interface = ConsoleSessionInterface(key)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_NAME="console",
                      SESSION_COOKIE_PATH="/console", PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
                      WTF_CSRF_CHECK_DEFAULT=False, WTF_CSRF_TIME_LIMIT=None)
    if config.trust_proxy:
        # Flask's documented way to add WSGI middleware is to replace wsgi_app; mypy sees a method.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.extensions["sign_in_limiter"] = SignInLimiter(db)
    app.extensions["console_known_devices"] = KnownDevices(services, key)
    console.csrf.init_app(app)
    app.register_blueprint(console.bp)
    app.jinja_env.filters["utc"] = console.format_utc
