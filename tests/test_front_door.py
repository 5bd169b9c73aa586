"""The front door measured from outside: a real `integration serve` (gunicorn, HeadFirstWorker, two
worker processes, multiprocess metrics) spoken to over loopback sockets, as a hostile client would."""
from __future__ import annotations

import base64
import http.client
import json
import socket

import pytest
import requests

from integration.web.gunicorn_worker import MAX_HEAD
from tests.conftest import ADMIN_TOKEN
from tests.served import CALLOUT_AUTH, Served, raw_exchange, refused_counts, split_answer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = Served(tmp_path_factory.mktemp("front-door"))
    yield server
    server.stop()


def chunked_post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, dict]:
    """POST ``body`` with Transfer-Encoding: chunked (no Content-Length), 8 KiB a chunk."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        chunks = (body[i:i + 8192] for i in range(0, len(body), 8192))
        conn.request("POST", path, body=chunks, encode_chunked=True,
                     headers={**headers, "Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def callout_of_size(size: int, account_id: str) -> bytes:
    """A valid callout body of exactly ``size`` bytes."""
    skeleton = json.dumps({"AccountId": account_id, "pad": ""}).encode()
    return json.dumps({"AccountId": account_id, "pad": "x" * (size - len(skeleton))}).encode()


# -- bodies over 64 KiB without a Content-Length -----------------------------------------------------

def test_chunked_callout_over_64_kib_is_413_and_one_of_64_kib_is_accepted(served):
    headers = {"Authorization": CALLOUT_AUTH, "Content-Type": "application/json"}
    status, body = chunked_post(served.port, "/webhooks/zuora", callout_of_size(65 * 1024, "A-big"), headers)
    assert (status, body) == (413, {"error": "payload_too_large", "detail": "the body may be at most 65536 bytes"})
    status, body = chunked_post(served.port, "/webhooks/zuora", callout_of_size(65536, "A-exact"), headers)
    assert status == 200 and body["success"] is True
    stored = [e["object_id"] for e in served.events()]
    assert "A-exact" in stored and "A-big" not in stored


def test_chunked_admin_body_over_64_kib_is_413(served):
    body = json.dumps({"zuora_account_ids": ["A1"], "pad": "x" * 70_000}).encode()
    status, answer = chunked_post(served.port, "/admin/sync", body, {"Authorization": f"Bearer {ADMIN_TOKEN}",
                                                                     "Content-Type": "application/json"})
    assert status == 413 and answer["error"] == "request_entity_too_large"


# -- gunicorn's own errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("request_bytes,status,code", [
    (b"GARBAGE\r\n\r\n", 400, "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", 400, "bad_request"),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10_000 + b"\r\n\r\n", 431,
     "request_header_fields_too_large"),
    (b"GET /healthz HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431, "request_header_fields_too_large"),
    (b"GET /healthz HTTP/1.1\r\nX-Endless: " + b"a" * MAX_HEAD, 431, "request_header_fields_too_large"),
], ids=["request line", "header line", "one header too large", "too many headers", "head over MAX_HEAD"])
def test_errors_gunicorn_answers_itself_are_json(served, request_bytes, status, code):
    answer_status, headers, body = split_answer(raw_exchange(served.port, request_bytes))
    assert answer_status == status
    assert headers["content-type"] == "application/json"
    assert body["error"] == code and isinstance(body["detail"], str) and body["detail"]


# -- slow clients ----------------------------------------------------------------------------------------

def test_fifty_slow_clients_dripping_headers_do_not_stop_callouts(served):
    slow = []
    try:
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            sock.sendall(b"POST /webhooks/zuora HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ")
            slow.append(sock)
        for n in range(20):
            response = requests.post(f"{served.url}/webhooks/zuora", json={"AccountId": f"A-busy-{n}"},
                                     headers={"Authorization": CALLOUT_AUTH}, timeout=5)
            assert response.status_code == 200, response.text
            for sock in slow:  # each slow client drips one more byte of its header
                sock.sendall(b"a")
        # All 50 are still connected and unanswered: they were waited on, not dropped to make room.
        for sock in slow:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in slow:
            sock.close()
    assert {f"A-busy-{n}" for n in range(20)} <= {e["object_id"] for e in served.events()}


def test_a_head_that_does_not_arrive_in_time_gets_408_json(tmp_path):
    # INTEGRATION_HEAD_TIMEOUT_SECONDS: the former name of INTEGRATION_REQUEST_TIMEOUT_SECONDS, still read
    server = Served(tmp_path, INTEGRATION_HEAD_TIMEOUT_SECONDS="1")
    try:
        status, _headers, body = split_answer(raw_exchange(server.port, b"POST /webhooks/zuora HTTP/1.1\r\nHost: x"))
        assert (status, body["error"]) == (408, "request_timeout")
        # A kept-alive connection gets the same deadline for its next request's head.
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = b""
            while not first.endswith(b'{"status":"ok"}\n'):
                first += sock.recv(4096)
            assert first.startswith(b"HTTP/1.1 200")
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            second = b""
            while chunk := sock.recv(4096):
                second += chunk
        assert split_answer(second)[0] == 408
    finally:
        server.stop()


# -- refused webhooks: logged and counted across processes ------------------------------------------------

def test_refused_webhooks_are_logged_and_counted_by_route_and_reason(served):
    before = refused_counts(served)
    secret_body = b'{"AccountId": "A 1", "marker": "body-must-not-be-logged"}'
    for _ in range(3):  # several requests, so both gunicorn processes are likely to count some
        requests.post(f"{served.url}/webhooks/zuora", data=b'{"AccountId": "A1"}', timeout=5,
                      headers={"Content-Type": "application/json",
                               "Authorization": "Basic " + base64.b64encode(b"zuora:wrong-password-77").decode()})
    requests.post(f"{served.url}/webhooks/zuora", data=secret_body, timeout=5,
                  headers={"Content-Type": "application/json", "Authorization": CALLOUT_AUTH})
    requests.post(f"{served.url}/webhooks/billing", data=b"x", timeout=5, headers={"Content-Type": "text/plain"})
    requests.post(f"{served.url}/webhooks/billing", data=b"{}", timeout=5,
                  headers={"Content-Type": "application/json", "webhook-id": "m1", "webhook-timestamp": "1",
                           "webhook-signature": "v1,bm9wZQ=="})
    after = refused_counts(served)

    def moved(route, reason):
        return after.get((route, reason), 0) - before.get((route, reason), 0)

    assert moved("/webhooks/zuora", "wrong_credentials") == 3
    assert moved("/webhooks/zuora", "invalid_payload") == 1
    assert moved("/webhooks/billing", "unsupported_media_type") == 1
    assert moved("/webhooks/billing", "timestamp_out_of_tolerance") == 1
    log = served.log()
    refusals = [json.loads(line) for line in log.splitlines() if '"webhook refused"' in line]
    assert {(r["route"], r["status"], r["reason"]) for r in refusals} >= {
        ("/webhooks/zuora", 401, "wrong_credentials"), ("/webhooks/zuora", 400, "invalid_payload"),
        ("/webhooks/billing", 415, "unsupported_media_type"), ("/webhooks/billing", 401, "timestamp_out_of_tolerance")}
    assert [r["fields"] for r in refusals if r["reason"] == "invalid_payload"] == [["AccountId"]]
    for leaked in ("wrong-password-77", "callout-password-2b8e", "body-must-not-be-logged", "A 1"):
        assert leaked not in log
