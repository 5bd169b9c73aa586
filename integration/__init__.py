"""Zuora ↔ billing-platform integration service.

``create_app`` is the Flask application factory (gunicorn: ``integration:create_app()``).
"""
from __future__ import annotations

import os

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from integration.config import Config, load_config
from integration.services import Services

__all__ = ["create_app"]


def create_app(config: Config | None = None, services: Services | None = None) -> Flask:
    """Build the web application. Without arguments, settings come from the environment."""
    from integration.logs import configure_logging
    from integration.web import admin, admin_extras, console_app, ops, reports, security, webhooks  # noqa: F401
    from integration.web.errors import register_error_handlers
    from integration.web.front_door import FrontDoor
    from integration.web.payloads import STREAM_LIMIT

    if services is None:
        config = config or load_config(os.environ)
        services = Services.from_config(config)
        configure_logging(config.secrets())
    app = Flask(__name__)
    app.json = _InOrderJSON(app)
    app.config["MAX_CONTENT_LENGTH"] = STREAM_LIMIT  # bodies are capped at MAX_BODY by read_capped_body
    app.extensions["integration"] = services
    # the webhook checks, also run by `integration serve`'s worker before it reads a body (gunicorn_worker)
    app.extensions["integration.front_door"] = FrontDoor(services.config)
    register_error_handlers(app)
    security.init_app(app)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(ops.bp)
    app.register_blueprint(admin.bp)
    console_app.init_app(app, services)
    return app


class _InOrderJSON(DefaultJSONProvider):
    """Responses keep the key order the code builds (the order CONTRACT.md shows), not sorted keys."""

    sort_keys = False
