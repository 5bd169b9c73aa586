"""The billing sandbox voids an invoice (CONTRACT §12): status ``VOID``, ``updatedAt`` moved, and a signed
``invoice.voided`` event (or ``invoice.updated``; or none, with ``?webhook=false``). Its delivery, signed:
tests/test_sandbox_billing.py."""
from __future__ import annotations

from integration_sandbox.billing import create_billing_sandbox
from tests.test_sandbox_billing import AUTH, FIXED_NOW, SECRET, TOKEN, customer, state_of

SPEC = {"accountId": "C1", "id": "I1", "startDate": "2024-01-01", "endDate": "2024-02-01",
        "fixed": [{"description": "Fee", "amount": 5}]}


def sandbox_client(clock):
    app = create_billing_sandbox(api_token=TOKEN, webhook_secret=SECRET, clock=clock)
    client = app.test_client()
    client.post("/customers", json=customer(), headers=AUTH)
    assert client.post("/_sandbox/invoices", json=SPEC).status_code == 201
    return app, client


def test_void_makes_the_invoice_void_and_emits_invoice_voided():
    now = [FIXED_NOW]
    app, client = sandbox_client(lambda: now[0])
    now[0] = FIXED_NOW.replace(day=2)
    try:
        voided = client.post("/_sandbox/invoices/I1/void")
        assert voided.status_code == 200
        assert (voided.get_json()["status"], voided.get_json()["updatedAt"]) == ("VOID", "2024-05-02T12:00:00.000Z")
        got = client.get("/invoices/I1", headers=AUTH).get_json()
        assert (got["status"], got["finalizingStatus"]) == ("VOID", "FINALIZED")
        listed = client.get("/invoices?status=VOID", headers=AUTH).get_json()["data"]
        assert [row["id"] for row in listed] == ["I1"]
        assert [(e["type"], e["data"]["id"]) for e in state_of(client)["events"]][-1] == ("invoice.voided", "I1")

        again = client.post("/_sandbox/invoices/I1/void")
        assert (again.status_code, again.get_json()) == (400, {"message": "Invoice 'I1' is VOID; it cannot be "
                                                                          "voided"})
        assert client.post("/_sandbox/invoices/nope/void").status_code == 404
    finally:
        app.extensions["billing_sandbox"].close()


def test_void_can_send_invoice_updated_or_nothing():
    app, client = sandbox_client(lambda: FIXED_NOW)
    try:
        bad = client.post("/_sandbox/invoices/I1/void", json={"event": "invoice.deleted"})
        assert bad.status_code == 400 and bad.get_json()["message"].startswith("event:")
        assert client.post("/_sandbox/invoices/I1/void", json={"event": "invoice.updated"}).status_code == 200
        assert [e["type"] for e in state_of(client)["events"]][-1] == "invoice.updated"

        client.post("/_sandbox/invoices", json={**SPEC, "id": "I2"})
        events = len(state_of(client)["events"])
        assert client.post("/_sandbox/invoices/I2/void?webhook=false").status_code == 200
        assert len(state_of(client)["events"]) == events  # a void whose webhook never came
        assert client.get("/invoices/I2", headers=AUTH).get_json()["status"] == "VOID"
    finally:
        app.extensions["billing_sandbox"].close()
