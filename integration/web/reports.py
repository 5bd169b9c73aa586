"""``GET /admin/reports/totals?period=YYYY-MM`` (CONTRACT §4, §9): the totals report of
``integration report``, on the admin blueprint (bearer check, JSON errors).

It reads both remote APIs while the request waits — the only admin route that does: a report is
a question asked now, with nothing to queue. The comparison is ``integration.flows.totals``, the
one flow module the web room may import (tests/test_layout.py says why). A remote that fails is a
502 naming the failure code, never a 500 and never a partial report.
"""
from __future__ import annotations

import logging

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from integration.domain.errors import SyncError
from integration.domain.periods import parse_period
from integration.flows.totals import totals_report
from integration.web.admin import bp, load_query
from integration.web.errors import ApiError
from integration.web.schemas_extra import TotalsQuerySchema

log = logging.getLogger("integration.admin")


@bp.get("/reports/totals")
def totals() -> ResponseReturnValue:
    """Billing vs Zuora totals per linked account for one month, mismatches first (200 either way)."""
    period = parse_period(load_query(TotalsQuerySchema())["period"])
    services = current_app.extensions["integration"]
    try:
        report = totals_report(services.db, services.zuora, services.billing, period)
    except SyncError as exc:
        log.warning("totals report stopped by a remote error", extra={"code": exc.code})
        raise ApiError(502, "remote_error", {"code": exc.code, "message": str(exc)}) from None
    log.info("totals report", extra={"period": str(period), "rows": len(report.rows),
                                     "mismatches": report.mismatches})
    return jsonify(report.as_json())
