"""``POST /oauth/token`` and the bearer tokens it issues (they expire on the sandbox clock)."""
from __future__ import annotations

import hmac
import secrets
import uuid
from typing import TYPE_CHECKING

import flask

from .common import _json_response

if TYPE_CHECKING:
    from .state import ZuoraSandbox


class TokensMixin:
    """Token state of :class:`~integration_sandbox.zuora.state.ZuoraSandbox`."""

    # -- tokens ------------------------------------------------------------------------------------

    def issue_token(self) -> tuple[str, str]:
        token, jti = secrets.token_hex(16), secrets.token_hex(16)
        with self.lock:
            now = self.now()
            for expired in [t for t, expiry in self.tokens.items() if expiry <= now]:
                del self.tokens[expired]
            self.tokens[token] = now + self.token_lifetime
            self.tokens_issued += 1
        return token, jti

    def token_valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self.lock:
            expiry = self.tokens.get(token)
            return expiry is not None and self.now() < expiry

    def revoke_tokens(self) -> int:
        with self.lock:
            n = len(self.tokens)
            self.tokens.clear()
            return n

def _auth_failure() -> flask.Response:
    resp = _json_response({"message": "Authentication error"}, 401)
    resp.headers["WWW-Authenticate"] = "Basic realm=Zuora API, ZSession realm=Zuora API, Bearer realm=Zuora API"
    return resp


def _bearer() -> str | None:
    header = flask.request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None

def _register_auth_routes(app: flask.Flask, sb: ZuoraSandbox) -> None:
    @app.post("/oauth/token")
    def create_token() -> flask.Response:
        req = flask.request
        if req.mimetype != "application/x-www-form-urlencoded":
            return _json_response({"message": "Content-Type must be application/x-www-form-urlencoded"}, 415)
        form = req.form
        missing = [k for k in ("client_id", "client_secret", "grant_type") if not form.get(k)]
        if missing:
            return _json_response({"message": f"Missing required form field(s): {', '.join(missing)}"}, 400)
        if form["grant_type"] != "client_credentials":
            return _json_response({"message": "grant_type must be client_credentials"}, 400)
        ok_id = hmac.compare_digest(form["client_id"].encode(), sb.client_id.encode())
        ok_secret = hmac.compare_digest(form["client_secret"].encode(), sb.client_secret.encode())
        if not (ok_id and ok_secret):
            return _json_response({"message": "Authentication error"}, 401)
        token, jti = sb.issue_token()
        return _json_response({"access_token": token, "token_type": "bearer", "expires_in": sb.token_lifetime,
                               "scope": f"user.{uuid.uuid4().hex} entity.{uuid.uuid4()} "
                                        "service.usage.delete service.usage.update tenant.19",
                               "jti": jti})
