"""Structured logs: JSON lines, one per event outcome and per remote call, carrying the event ID,
with no configured secret anywhere — checked over a full run of every flow."""
import io
import json
import logging
import re

import pytest
import requests

from integration.logs import JsonFormatter, RedactingFilter, configure_logging
from integration_sandbox.local_stack import LocalStack
from tests.stack_helpers import create_billing_account, create_zuora_account


@pytest.fixture
def captured():
    buffer = io.StringIO()
    yield buffer
    configure_logging([], stream=io.StringIO())  # detach from the buffer
    logging.getLogger().setLevel(logging.WARNING)


def test_full_flow_logs_are_json_with_event_ids_and_no_secrets(tmp_path, captured):
    with LocalStack(tmp_path) as stack:
        configure_logging(stack.config.secrets(), level=logging.DEBUG, stream=captured)
        admin = stack.admin()
        admin.put(f"{stack.service_url}/admin/meters/api-calls", timeout=10, json={
            "zuora_subscription_number": "A-S00000001", "zuora_charge_number": "C-1", "uom": "Each",
            "mode": "quantity"}).raise_for_status()
        create_zuora_account(stack)
        create_billing_account(stack, account_id="acc-log")
        stack.wait_idle()
        requests.post(f"{stack.billing_url}/_sandbox/invoices", timeout=10, json={
            "accountId": "acc-log", "startDate": "2026-10-01T00:00:00Z", "endDate": "2026-11-01T00:00:00Z",
            "fixed": [{"description": "Fee", "amount": 10}],
            "usage": [{"meterId": "api-calls", "name": "API", "quantity": 5, "valuePerQuantity": 1}]}
        ).raise_for_status()
        stack.wait_idle()
        secrets = [*stack.config.secrets(), stack.zuora_sandbox.client_secret, stack.billing_sandbox.api_token]
        events = [dict(r) for r in stack.services.db.utils().execute("SELECT id, status FROM events").fetchall()]

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert len(lines) > 20
    for secret in secrets:
        assert secret not in text
    assert all(e["status"] == "done" for e in events) and len(events) >= 6
    outcomes = [ln for ln in lines if ln["msg"] == "event done"]
    assert sorted(ln["event_id"] for ln in outcomes) == sorted(e["id"] for e in events)
    remote = [ln for ln in lines if ln["logger"] == "integration.remote"]
    assert remote and all({"event_id", "api", "method", "endpoint", "status", "duration_ms"} <= set(ln)
                          for ln in remote)
    assert {ln["api"] for ln in remote} == {"zuora", "billing"}
    # Endpoints are templates (low-cardinality metric labels), never a raw object ID.
    assert not [ln["endpoint"] for ln in remote if re.search(r"[0-9a-f]{32}|acc-log", ln["endpoint"])]


def test_redacting_filter_masks_secrets_in_messages_fields_and_tracebacks():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(["s3cr3t-value"]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("token is %s", "s3cr3t-value", extra={"detail": "Bearer s3cr3t-value"})
        try:
            raise RuntimeError("failed with s3cr3t-value")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "s3cr3t-value" not in text
    first, second = [json.loads(ln) for ln in text.splitlines()]
    assert first["msg"] == "token is ********" and first["detail"] == "Bearer ********"
    assert "failed with ********" in second["msg"]
