"""The admin API (CONTRACT §4): every route behind ``Authorization: Bearer $ADMIN_TOKEN``."""
from __future__ import annotations

import hmac

from flask import Blueprint, current_app, request

from .errors import error_response

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin_token():
    """Constant-time bearer check before any admin handler runs; 401 JSON otherwise."""
    expected = current_app.extensions["integration"].config.admin_token.reveal().encode()
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        return error_response(401, "unauthorized", "a valid admin bearer token is required",
                              headers={"WWW-Authenticate": 'Bearer realm="admin"'})
    return None
