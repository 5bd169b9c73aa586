"""Health, readiness and metrics: the unauthenticated endpoints a platform probes."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from integration import metrics
from integration.domain.errors import FAILURE_CODES
from integration.store import failures
from integration.web.errors import ApiError
from integration.web.openapi import build_spec

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and serving."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """The store is reachable and fully migrated; otherwise 503 so no traffic is routed here.
    Says which engine (``sqlite`` or ``postgresql``) and how many migrations are applied."""
    db = current_app.extensions["integration"].db
    try:
        pending = db.pending_migrations()
    except Exception as exc:  # noqa: BLE001 - any store trouble means not ready
        raise ApiError(503, "not_ready", f"store unreachable ({db.dialect}): {type(exc).__name__}") from None
    if pending:
        raise ApiError(503, "not_ready", {"engine": db.dialect, "pending_migrations": pending})
    return jsonify({"status": "ready", "engine": db.dialect,
                    "migrations": {"applied": len(db.migrations()), "pending": []}})


@bp.get("/metrics")
def metrics_endpoint() -> Response:
    """Prometheus text: per-process metrics summed over every process under ``integration serve``,
    plus the store's gauges (inbox depth, oldest due event, failure list), read now."""
    services = current_app.extensions["integration"]
    store = metrics.StoreCollector(services.inbox.depth, lambda: failures.counts_by_code(services.db),
                                   codes=FAILURE_CODES)
    body, content_type = metrics.render(extra=[store])
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """This API, generated from the schemas the handlers validate with."""
    return jsonify(build_spec())
