"""The admin API (CONTRACT §4): every route behind ``Authorization: Bearer $ADMIN_TOKEN``."""
from __future__ import annotations

import hmac

from flask import Blueprint, current_app, jsonify, request
from marshmallow import ValidationError

from .. import mappings
from ..schemas import MappingQuerySchema
from .errors import error_response

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _services():
    return current_app.extensions["integration"]


@bp.before_request
def require_admin_token():
    """Constant-time bearer check before any admin handler runs; 401 JSON otherwise."""
    expected = _services().config.admin_token.reveal().encode()
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        return error_response(401, "unauthorized", "a valid admin bearer token is required",
                              headers={"WWW-Authenticate": 'Bearer realm="admin"'})
    return None


def load_query(schema):
    """Validated query arguments, or raise a 400 naming each bad parameter."""
    try:
        return schema.load(request.args.to_dict()), None
    except ValidationError as exc:
        return None, error_response(400, "invalid_query", exc.messages)


@bp.get("/mappings")
def list_mappings():
    """The ID-mapping table, filtered and paged with an opaque cursor."""
    query, problem = load_query(MappingQuerySchema())
    if problem:
        return problem
    after = None
    if "after" in query:
        try:
            after = mappings.decode_cursor(query["after"])
        except ValueError:
            return error_response(400, "invalid_query", {"after": ["Not a cursor returned by this API."]})
    items, next_cursor = mappings.page(_services().db, type=query.get("type"), zuora_id=query.get("zuora_id"),
                                       billing_id=query.get("billing_id"), limit=query["limit"], after=after)
    return jsonify({"data": [m.as_json() for m in items], "next": next_cursor})
