"""The rule every admin list route shares: a query parameter the route does not know is a 400 that
names it. ``?foo=bar`` (or a misspelt ``?objecttype=``) must not quietly return everything."""
from __future__ import annotations

from flask import request
from marshmallow import Schema


def unknown_parameters(schema: Schema) -> dict[str, list[str]] | None:
    """``{name: ["Unknown parameter."]}`` for each query parameter ``schema`` does not declare, or None."""
    unknown = sorted(set(request.args) - set(schema.fields))
    return {name: ["Unknown parameter."] for name in unknown} or None

