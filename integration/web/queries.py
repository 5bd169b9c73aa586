"""The rule every admin list route shares: a query parameter the route does not know is a 400 that
names it. ``?foo=bar`` (or a misspelt ``?objecttype=``) must not quietly return everything."""
from __future__ import annotations

from flask import current_app, request
from marshmallow import Schema

from integration.store import events_list, failures


def unknown_parameters(schema: Schema) -> dict[str, list[str]] | None:
    """``{name: ["Unknown parameter."]}`` for each query parameter ``schema`` does not declare, or None."""
    unknown = sorted(set(request.args) - set(schema.fields))
    return {name: ["Unknown parameter."] for name in unknown} or None


def not_found_ids(selector: failures.Selector) -> dict[str, list[str]]:
    """``{"not_found": [...]}`` for a selection by ``ids``: the IDs that name no event, or one deleted
    earlier (call it before acting, or a delete would report its own work). ``{}`` for other selectors."""
    if selector.ids is None:
        return {}
    return {"not_found": events_list.not_actionable(current_app.extensions["integration"].db, selector.ids)}
