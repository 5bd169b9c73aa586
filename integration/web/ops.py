"""Health, readiness and metrics: the unauthenticated endpoints a platform probes."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from .. import metrics
from .errors import error_response

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and serving."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """The store is reachable and fully migrated; otherwise 503 so no traffic is routed here."""
    db = current_app.extensions["integration"].db
    try:
        pending = db.pending_migrations()
    except Exception as exc:  # noqa: BLE001 - any store trouble means not ready
        return error_response(503, "not_ready", f"store unreachable: {type(exc).__name__}")
    if pending:
        return error_response(503, "not_ready", {"pending_migrations": pending})
    return jsonify({"status": "ready"})


@bp.get("/metrics")
def metrics_endpoint():
    """Prometheus text, summed over all processes when running under ``integration serve``."""
    services = current_app.extensions["integration"]
    try:
        depth = services.inbox.depth()
        metrics.INBOX_DEPTH.labels(status="pending").set(depth["pending"])
        metrics.INBOX_DEPTH.labels(status="running").set(depth["running"])
        metrics.INBOX_OLDEST_DUE_AGE.set(depth["oldest_due_age_seconds"])
    except Exception:  # noqa: BLE001 - metrics still render from the counters
        pass
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
