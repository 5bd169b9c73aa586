import json
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import WEBHOOK_SECRET
from tests.validation_errors import assert_refusal


def signed_headers(body: bytes, msg_id="msg_1", timestamp=None, secret=WEBHOOK_SECRET):
    moment = datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), tz=timezone.utc)
    signature = Webhook(secret).sign(msg_id, moment, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": signature}


def post(client, payload, headers=None, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    return client.post("/webhooks/billing", data=body, content_type="application/json",
                       headers=headers if headers is not None else signed_headers(body))


def test_signed_event_is_stored(client, services):
    resp = post(client, {"type": "invoice.finalized", "data": {"id": "inv.1"}})
    assert resp.status_code == 200
    event_id = resp.get_json()["event_id"]
    [row] = services.db.utils().execute("SELECT * FROM events").fetchall()
    assert (row["id"], row["source"], row["type"], row["object_type"], row["object_id"], row["dedupe_key"]) == (
        event_id, "billing", "invoice.finalized", "invoice", "inv.1", "billing:msg_1")


@pytest.mark.parametrize("event_type", ["account.created", "account.updated"])
def test_account_events_point_at_the_billing_account(client, services, event_type):
    assert post(client, {"type": event_type, "data": {"id": "acc-1"}}).status_code == 200
    [row] = services.db.utils().execute("SELECT object_type, object_key FROM events").fetchall()
    assert tuple(row) == ("account", "billing-account:acc-1")


@pytest.mark.parametrize("event_type", ["invoice.voided", "invoice.updated"])
def test_void_events_are_work_on_the_invoice_s_own_key(client, services, event_type):
    """CONTRACT §3/§12: both are kinds of work, keyed like invoice.finalized, so a void never runs beside a
    push of the same invoice (whether an invoice.updated is a void is the flow's to find out)."""
    resp = post(client, {"type": event_type, "data": {"id": "inv.9"}})
    assert resp.status_code == 200 and resp.get_json()["accepted"] is True
    [row] = services.db.utils().execute("SELECT type, object_type, object_id, object_key FROM events").fetchall()
    assert tuple(row) == (event_type, "invoice", "inv.9", "billing-invoice:inv.9")


def test_redelivery_with_same_webhook_id_is_deduplicated(client, services):
    body = json.dumps({"type": "account.created", "data": {"id": "acc-1"}}).encode()
    first = post(client, None, raw=body, headers=signed_headers(body, "msg_dup")).get_json()
    again = post(client, None, raw=body, headers=signed_headers(body, "msg_dup"))
    assert again.status_code == 200 and again.get_json() == first
    assert services.db.utils().execute("SELECT COUNT(*) FROM events").fetchall()[0][0] == 1


def test_rotated_secrets_any_matching_signature_passes(client):
    body = json.dumps({"type": "account.created", "data": {"id": "acc-2"}}).encode()
    good = signed_headers(body)
    old = signed_headers(body, secret="whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LTEyMzQ1Ng==")
    good["webhook-signature"] = f"{old['webhook-signature']} {good['webhook-signature']}"
    assert post(client, None, raw=body, headers=good).status_code == 200


def test_unknown_type_is_acknowledged_and_ignored(client, services):
    resp = post(client, {"type": "price_plan.created", "data": {"id": "pp1"}})
    assert resp.status_code == 200
    assert resp.get_json() == {"accepted": False, "ignored": "price_plan.created"}
    assert services.db.utils().execute("SELECT COUNT(*) FROM events").fetchall()[0][0] == 0


WRONG_SECRET = "whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldDEyMw=="


def without(*names):
    return lambda h, b: {k: v for k, v in h.items() if k not in names}


@pytest.mark.parametrize("mutate,reason", [
    (lambda h, b: {**h, "webhook-signature": "v1,bm9wZQ=="}, "signature_mismatch"),
    (lambda h, b: signed_headers(b, secret=WRONG_SECRET), "signature_mismatch"),
    (lambda h, b: {**h, "webhook-id": "msg_other"}, "signature_mismatch"),
    (without("webhook-signature"), "missing_signature"),
    (without("webhook-id", "webhook-timestamp", "webhook-signature"), "missing_signature"),
    (lambda h, b: {**h, "webhook-timestamp": " "}, "missing_signature"),
    (lambda h, b: {**h, "webhook-signature": "garbage"}, "malformed_signature_header"),
    (lambda h, b: {**h, "webhook-signature": "v1,not*base64"}, "malformed_signature_header"),
    (lambda h, b: {**h, "webhook-signature": h["webhook-signature"] + " ,abc="}, "malformed_signature_header"),
    (lambda h, b: {**h, "webhook-timestamp": "yesterday"}, "malformed_signature_header"),
    (lambda h, b: {**h, "webhook-timestamp": "1.7e9"}, "malformed_signature_header"),
    (lambda h, b: {**h, "webhook-timestamp": "-5"}, "malformed_signature_header"),
    (lambda h, b: signed_headers(b, timestamp=time.time() - 400), "timestamp_out_of_tolerance"),
    (lambda h, b: signed_headers(b, timestamp=time.time() + 400), "timestamp_out_of_tolerance"),
    (lambda h, b: {**h, "webhook-signature": "v1a,bm9wZQ== v2,bm9wZQ=="}, "unsupported_algorithm"),
], ids=["another signature", "another secret", "another webhook-id", "no signature header", "no headers at all",
        "blank timestamp", "entry without a version", "signature not base64", "empty version",
        "timestamp not a number", "timestamp not whole seconds", "negative timestamp", "timestamp too old",
        "timestamp too new", "only other versions"])
def test_bad_signatures_are_401_with_the_projects_reason(client, services, mutate, reason):
    body = json.dumps({"type": "account.created", "data": {"id": "acc-1"}}).encode()
    resp = post(client, None, raw=body, headers=mutate(signed_headers(body), body))
    assert resp.status_code == 401
    answer = resp.get_json()
    assert list(answer) == ["error", "reason", "detail"]
    assert (answer["error"], answer["reason"]) == ("invalid_signature", reason)
    assert isinstance(answer["detail"], str) and answer["detail"]
    assert services.db.utils().execute("SELECT COUNT(*) FROM events").fetchall()[0][0] == 0


def test_a_missing_signature_header_is_named(client):
    body = json.dumps({"type": "account.created", "data": {"id": "acc-1"}}).encode()
    resp = post(client, None, raw=body, headers=without("webhook-timestamp")(signed_headers(body), body))
    assert resp.get_json()["reason"] == "missing_signature"
    assert "webhook-timestamp" in resp.get_json()["detail"].split("missing:")[1]


def test_a_v1_signature_among_other_versions_passes(client):
    body = json.dumps({"type": "account.created", "data": {"id": "acc-3"}}).encode()
    headers = signed_headers(body)
    headers["webhook-signature"] = f"v1a,bm9wZQ== {headers['webhook-signature']}"
    assert post(client, None, raw=body, headers=headers).status_code == 200


def test_the_reason_is_the_same_in_body_log_and_metric(client, caplog):
    from prometheus_client import REGISTRY

    def count(reason):
        return REGISTRY.get_sample_value("integration_webhook_refused_total",
                                         {"route": "/webhooks/billing", "reason": reason}) or 0.0

    body = json.dumps({"type": "account.created", "data": {"id": "acc-1"}}).encode()
    for headers, reason in [(signed_headers(body, secret=WRONG_SECRET), "signature_mismatch"),
                            (signed_headers(body, timestamp=time.time() - 400), "timestamp_out_of_tolerance")]:
        before = count(reason)
        caplog.clear()
        resp = post(client, None, raw=body, headers=headers)
        assert resp.get_json()["reason"] == reason
        assert count(reason) - before == 1
        [line] = [r for r in caplog.records if r.getMessage() == "webhook refused"]
        assert (line.route, line.status, line.reason) == ("/webhooks/billing", 401, reason)


def test_tampered_body_is_401(client):
    body = json.dumps({"type": "account.created", "data": {"id": "acc-1"}}).encode()
    headers = signed_headers(body)
    resp = post(client, None, raw=body.replace(b"acc-1", b"acc-2"), headers=headers)
    assert resp.status_code == 401 and resp.get_json()["reason"] == "signature_mismatch"


@pytest.mark.parametrize("payload,detail", [
    ({"data": {"id": "a"}}, {"type"}),  # a set: marshmallow's words, only the fields count
    ({"type": "account.created"}, {"data"}),
    ({"type": "account.created", "data": {}}, {"data.id"}),
    ({"type": "account.created", "data": {"id": 7}}, {"data.id"}),
    ({"type": "account.created", "data": "acc-1"}, {"data"}),
    ([], {"body": ["Must be a JSON object."]}),
])
def test_signed_but_malformed_body_is_400(client, payload, detail):
    resp = post(client, payload)
    assert resp.status_code == 400
    assert_refusal(resp.get_json(), "invalid_payload", detail)


def test_non_json_and_oversized_bodies(client):
    resp = client.post("/webhooks/billing", data="x", content_type="text/plain")
    assert resp.status_code == 415
    big = json.dumps({"type": "account.created", "data": {"id": "a"}, "pad": "x" * 70_000}).encode()
    resp = post(client, None, raw=big, headers=signed_headers(big))
    assert resp.status_code == 413


@pytest.mark.parametrize("object_id", ["acc\ud800", "acc\x00", "acc\x1b", "acc\x9b", "acc\u200b", "acc\u202e",
                                       "\ufeffacc", "acc 1"])
def test_billing_object_id_must_be_printable(client, services, object_id):
    resp = post(client, {"type": "account.created", "data": {"id": object_id}})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_payload"
    assert list(resp.get_json()["detail"]["data"]) == ["id"]
    assert services.db.utils().execute("SELECT COUNT(*) FROM events").fetchall()[0][0] == 0


@pytest.mark.parametrize("webhook_id", ["msg\x01", "msg\x7f", "msg\x85", "msg 1"])
def test_webhook_id_header_must_be_printable(client, services, webhook_id):
    body = json.dumps({"type": "account.created", "data": {"id": "acc-1"}}).encode()
    resp = post(client, None, raw=body, headers=signed_headers(body, msg_id=webhook_id))
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "invalid_header" and list(resp.get_json()["detail"]) == ["webhook-id"]
    assert services.db.utils().execute("SELECT COUNT(*) FROM events").fetchall()[0][0] == 0
