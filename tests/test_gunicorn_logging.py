"""gunicorn's own log lines pass the service's secret masking (integration/web/gunicorn_logging.py)."""
from __future__ import annotations

from gunicorn.config import Config

from integration.web.gunicorn_logging import ServiceLogger, environment_secrets


def test_gunicorn_error_log_masks_every_configured_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("ADMIN_TOKEN", "admin-token-in-a-request-line-41")
    monkeypatch.setenv("ZUORA_CALLOUT_PASSWORD", "callout-password-in-a-header-77")
    monkeypatch.setenv("ZUORA_CLIENT_ID", "not-a-secret-client-id")
    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "error.log"))
    logger = ServiceLogger(cfg)
    try:
        logger.warning("Invalid request from ip=1.2.3.4: Invalid HTTP request line: 'GET /admin?t=%s x'",
                       "admin-token-in-a-request-line-41")
        try:
            raise ValueError("callout-password-in-a-header-77")
        except ValueError:
            logger.exception("Error handling request")
        replaced = list(logger.error_log.handlers)
        logger.setup(cfg)  # a configuration reload sets the handlers up again: still masking
        for handler in replaced:  # gunicorn drops them without closing their files
            handler.close()
        logger.error("again admin-token-in-a-request-line-41")
    finally:  # gunicorn's loggers are process-wide: leave them as they were
        for log in (logger.error_log, logger.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
                handler.close()
    text = (tmp_path / "error.log").read_text()
    assert "admin-token-in-a-request-line-41" not in text and "callout-password-in-a-header-77" not in text
    assert "t=******** x" in text and "ValueError: ********" in text and "again ********" in text


def test_environment_secrets_are_the_secret_variables_only():
    env = {"ADMIN_TOKEN": "t0ken-value", "BILLING_API_TOKEN": "b1lling", "ZUORA_CLIENT_ID": "visible", "PORT": "1"}
    assert sorted(environment_secrets(env)) == ["b1lling", "t0ken-value"]
