"""What every response of the service carries, whichever part of it answered: the security headers,
HSTS over HTTPS, and a ``Location`` that never names a host.

WHY app-wide and not on the console's blueprint: werkzeug answers some requests before any blueprint
runs — the redirect that merges ``//`` in a path (``/console//mappings``) or adds a trailing slash
(``/console``) — and builds that redirect's ``Location`` from the request's ``Host`` (or
``X-Forwarded-Host`` behind a trusted proxy): a value the client chose, so a forged one sent the
browser to another site, and no blueprint hook added the headers. Every redirect the service makes
is to itself, so its ``Location`` is sent as a path: the browser resolves it against the origin it
actually asked.

HSTS is sent only over HTTPS (RFC 6797 §7.2: a browser ignores it over HTTP): as the server saw the
request, or as a proxy says in ``X-Forwarded-Proto`` when ``INTEGRATION_TRUST_PROXY=true`` (ProxyFix,
``integration.web.console_app``); without that setting the header is the client's and is not believed.
"""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, request

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self';"
       " frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000"
"""One year, no ``includeSubDomains``: the service cannot speak for the other hosts of its domain."""


def init_app(app: Flask) -> None:
    app.after_request(secure_response)


def secure_response(response: Response) -> Response:
    """Add the headers a route did not set itself, HSTS over HTTPS, and make a redirect same-origin."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    location = response.headers.get("Location")
    if location is not None:
        response.headers["Location"] = same_origin(location)
    return response


def same_origin(location: str) -> str:
    """``location`` without a scheme or host: ``http://evil.example/console/`` → ``/console/``.

    A path-relative location is kept as it is. A path that would begin with ``//`` or ``/\\`` (which
    browsers read as another host) begins with a single ``/``."""
    parts = urlsplit(location)
    if not (parts.scheme or parts.netloc or location.startswith(("//", "/\\"))):
        return location
    path = "/" + parts.path.lstrip("/\\")
    return urlunsplit(("", "", path, parts.query, parts.fragment))
