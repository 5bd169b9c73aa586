"""Slow and hostile clients against a real `integration serve` (2 gunicorn workers × 4 threads), over loopback
sockets: a request reaches a thread only once it is whole, within one deadline for head and body; the
webhooks' credentials and signature headers are refused before a byte of the body is read."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.conftest import ADMIN_TOKEN
from tests.served import CALLOUT_AUTH, Served, raw_exchange, refused_counts, split_answer

pytestmark = pytest.mark.slow
THREADS = 2 * 4  # `integration serve --workers 2`, GUNICORN_THREADS 4
HMAC_KEY = b"hmac-key-31415"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Basic credentials and an HMAC both configured; a long deadline, so slow clients stay for a whole test."""
    server = Served(tmp_path_factory.mktemp("slow-clients"), INTEGRATION_REQUEST_TIMEOUT_SECONDS="60",
                    ZUORA_CALLOUT_HMAC_SECRET=HMAC_KEY.decode())
    yield server
    server.stop()


def signature(body: bytes) -> str:
    return base64.b64encode(hmac.new(HMAC_KEY, body, hashlib.sha256).digest()).decode()


def head(path: str, *fields: str, length: int = 60_000) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             f"Content-Length: {length}", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def plausible_billing_head(n: int) -> bytes:
    """Headers a pre-check cannot fault: present, well-formed, a fresh timestamp (the signature needs the body)."""
    return head("/webhooks/billing", f"webhook-id: msg_slow_{n}", f"webhook-timestamp: {int(time.time())}",
                "webhook-signature: v1," + base64.b64encode(os.urandom(32)).decode())


def plausible_callout_head() -> bytes:
    return head("/webhooks/zuora", f"Authorization: {CALLOUT_AUTH}",
                "X-Zuora-Signature: " + base64.b64encode(os.urandom(32)).decode())


def connect(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(data)
    return sock


def answer_within(sock: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes, which must happen within ``seconds``."""
    sock.settimeout(seconds)
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def callout(url: str, account_id: str) -> requests.Response:
    body = json.dumps({"AccountId": account_id}).encode()
    return requests.post(f"{url}/webhooks/zuora", data=body, timeout=10,
                         headers={"Authorization": CALLOUT_AUTH, "Content-Type": "application/json",
                                  "X-Zuora-Signature": signature(body)})


# -- many slow clients --------------------------------------------------------------------------------------

def test_callouts_stay_fast_with_eight_times_as_many_slow_clients_as_threads(served, record_property):
    # 4 × THREADS clients drip their bodies a byte a second behind heads that pass every pre-check, and
    # 4 × THREADS more sent such a head and stopped. Before HeadFirstWorker read bodies in its loop, each one
    # held a request thread: 10 of them made every callout time out.
    drippers = [connect(served.port, plausible_billing_head(n) + b"{") for n in range(2 * THREADS)]
    drippers += [connect(served.port, plausible_callout_head() + b"{") for _ in range(2 * THREADS)]
    stalled = [connect(served.port, plausible_billing_head(n)) for n in range(2 * THREADS)]
    stalled += [connect(served.port, plausible_callout_head()) for _ in range(2 * THREADS)]
    stop = threading.Event()

    def drip():
        while not stop.wait(1.0):
            for sock in drippers:
                sock.sendall(b" ")

    dripping = threading.Thread(target=drip, daemon=True)
    dripping.start()
    try:
        time.sleep(1.5)  # every slow client has been accepted and is as far as it will get
        latencies, statuses = [], []
        for n in range(100):
            started = time.perf_counter()
            statuses.append(callout(served.url, f"A-busy-{n}").status_code)
            latencies.append(time.perf_counter() - started)
        # Every slow client is still connected and unanswered: waited on, not dropped to make room.
        for sock in drippers + stalled:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        stop.set()
        dripping.join(timeout=5)
        for sock in drippers + stalled:
            sock.close()
    latencies.sort()
    p50, p99 = latencies[49], latencies[98]
    summary = (f"100 callouts beside {len(drippers) + len(stalled)} slow clients: p50 {p50 * 1000:.1f} ms, "
               f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
    record_property("latency", summary)  # in --junitxml's report
    assert statuses == [200] * 100, summary
    assert p99 <= 1.0, summary
    assert {f"A-busy-{n}" for n in range(100)} <= {e["object_id"] for e in served.events()}


# -- refused before the body ----------------------------------------------------------------------------------

@pytest.mark.parametrize("request_head,status,error,reason", [
    (head("/webhooks/zuora"), 401, "unauthorized", "missing_credentials"),
    (head("/webhooks/zuora", "Authorization: Basic " + base64.b64encode(b"zuora:wrong").decode()),
     401, "unauthorized", "wrong_credentials"),
    (head("/webhooks/zuora", f"Authorization: {CALLOUT_AUTH}"), 401, "invalid_signature", "missing_signature"),
    (head("/webhooks/zuora", f"Authorization: {CALLOUT_AUTH}", "X-Zuora-Signature: bm9wZQ=="),
     401, "invalid_signature", "malformed_signature_header"),
    (head("/webhooks/billing", "webhook-id: m1"), 401, "invalid_signature", "missing_signature"),
    (head("/webhooks/billing", "webhook-id: m1", "webhook-timestamp: 1700000000", "webhook-signature: v1,bm9wZQ=="),
     401, "invalid_signature", "timestamp_out_of_tolerance"),
    (head("/webhooks/billing", "webhook-id: m1", "webhook-timestamp: {now}", "webhook-signature: v1a,bm9wZQ=="),
     401, "invalid_signature", "unsupported_algorithm"),
    (head("/webhooks/%7auora", f"Authorization: {CALLOUT_AUTH}", length=70_000), 413, "payload_too_large",
     "payload_too_large"),
    (head("/webhooks/billing").replace(b"application/json", b"text/plain"), 415, "unsupported_media_type",
     "unsupported_media_type"),
], ids=["no credentials", "wrong credentials", "no HMAC header", "malformed HMAC header", "no signature headers",
        "stale timestamp", "no v1 signature", "declared length over 64 KiB", "not JSON"])
def test_refused_before_a_byte_of_the_body_is_sent(served, request_head, status, error, reason):
    route = "/webhooks/zuora" if b"uora" in request_head.split(b" ", 2)[1] else "/webhooks/billing"
    request_head = request_head.replace(b"{now}", str(int(time.time())).encode())  # now, not at collection
    before = refused_counts(served).get((route, reason), 0)
    with connect(served.port, request_head) as sock:  # the head only: the body (60 KB announced) never comes
        answer_status, headers, body = split_answer(answer_within(sock, 5))
    assert (answer_status, body["error"]) == (status, error)
    if status == 401:
        assert (body["reason"], list(body)) == (reason, ["error", "reason", "detail"])
    if error == "unauthorized":
        assert headers["www-authenticate"] == 'Basic realm="zuora-callouts"'
    assert refused_counts(served).get((route, reason), 0) - before == 1
    assert (route, status, reason) in {(r["route"], r["status"], r["reason"]) for r in
                                       (json.loads(line) for line in served.log().splitlines()
                                        if '"webhook refused"' in line)}


def test_100_continue_is_answered_only_once_the_head_passes(served):
    body = json.dumps({"AccountId": "A-continue"}).encode()
    request = head("/webhooks/zuora", f"Authorization: {CALLOUT_AUTH}", f"X-Zuora-Signature: {signature(body)}",
                   "Expect: 100-continue", "Connection: close", length=len(body))
    with connect(served.port, request) as sock:
        sock.settimeout(5)
        interim = sock.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        final = answer_within(sock, 5)
    assert final.count(b"100 Continue") == 0
    status, _headers, answer = split_answer(final)
    assert status == 200 and answer["success"] is True
    # Refused instead: the final answer comes at once, no 100, and the client need not send its body.
    with connect(served.port, request.replace(CALLOUT_AUTH.encode(), b"Basic eDp5")) as sock:
        refused = answer_within(sock, 5)
    assert refused.startswith(b"HTTP/1.1 401 ") and b"100 Continue" not in refused


def test_a_chunked_body_dripped_across_its_chunks_is_served(served):
    body = json.dumps({"AccountId": "A-chunked"}).encode()
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 5]), body[i:i + 5]) for i in range(0, len(body), 5))
    encoded += b"0\r\nX-Trailer: t\r\n\r\n"
    request = head("/webhooks/zuora", f"Authorization: {CALLOUT_AUTH}", f"X-Zuora-Signature: {signature(body)}",
                   "Connection: close").replace(b"Content-Length: 60000", b"Transfer-Encoding: chunked")
    with connect(served.port, request) as sock:
        for i in range(0, len(encoded), 3):  # pieces that split sizes, data and CRLFs
            sock.sendall(encoded[i:i + 3])
            time.sleep(0.005)
        status, _headers, answer = split_answer(answer_within(sock, 5))
    assert status == 200 and answer["success"] is True


def test_pipelined_requests_are_each_answered(served):
    bodies = [json.dumps({"AccountId": f"A-pipe-{n}"}).encode() for n in range(2)]
    requests_ = [head("/webhooks/zuora", f"Authorization: {CALLOUT_AUTH}", f"X-Zuora-Signature: {signature(b)}",
                      *(["Connection: close"] if n else []), length=len(b)) + b for n, b in enumerate(bodies)]
    answers = raw_exchange(served.port, b"".join(requests_), timeout=10)
    assert answers.count(b"HTTP/1.1 200 OK") == 2
    assert {"A-pipe-0", "A-pipe-1"} <= {e["object_id"] for e in served.events()}


def test_a_kept_alive_connection_serves_request_after_request(served):
    with requests.Session() as session:
        for n in range(5):
            body = json.dumps({"AccountId": f"A-kept-{n}"}).encode()
            response = session.post(f"{served.url}/webhooks/zuora", data=body, timeout=10,
                                    headers={"Authorization": CALLOUT_AUTH, "Content-Type": "application/json",
                                             "X-Zuora-Signature": signature(body)})
            assert response.status_code == 200 and response.headers.get("Connection") != "close"
        assert session.get(f"{served.url}/healthz", timeout=10).json() == {"status": "ok"}


# -- the deadline ---------------------------------------------------------------------------------------------

def test_a_dripping_body_gets_408_at_the_deadline(tmp_path):
    server = Served(tmp_path, INTEGRATION_REQUEST_TIMEOUT_SECONDS="2")
    try:
        started = time.monotonic()
        with connect(server.port, head("/webhooks/zuora", f"Authorization: {CALLOUT_AUTH}", length=1000)) as sock:
            sock.settimeout(0.3)
            answer = b""
            while time.monotonic() - started < 10:  # a byte every 0.3 s: never silent, never done
                try:
                    sock.sendall(b" ")
                    if not (chunk := sock.recv(65536)):
                        break
                    answer += chunk
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
        elapsed = time.monotonic() - started
        status, _headers, body = split_answer(answer)
        assert (status, body["error"]) == (408, "request_timeout")
        assert 1.5 <= elapsed <= 5
        assert refused_counts(server).get(("/webhooks/zuora", "request_timeout")) == 1
    finally:
        server.stop()


def test_the_former_name_of_the_deadline_still_sets_it():
    code = "from integration.web.gunicorn_worker import REQUEST_TIMEOUT; print(REQUEST_TIMEOUT)"
    env = {k: v for k, v in os.environ.items() if k != "INTEGRATION_REQUEST_TIMEOUT_SECONDS"}
    shown = subprocess.run([sys.executable, "-c", code], env={**env, "INTEGRATION_HEAD_TIMEOUT_SECONDS": "7"},
                           capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "7.0"


# -- what a malformed request leaves behind ------------------------------------------------------------------

def test_a_malformed_request_line_with_a_secret_is_neither_echoed_nor_logged(served):
    line = f"GET /admin/failures?token={ADMIN_TOKEN}&key=unconfigured-credential-5d1 HTTP/1.1 junk\r\n"
    status, headers, body = split_answer(raw_exchange(served.port, line.encode() + b"Host: x\r\n\r\n"))
    assert (status, headers["content-type"], body["error"]) == (400, "application/json", "bad_request")
    assert ADMIN_TOKEN not in json.dumps(body) and "unconfigured-credential-5d1" not in json.dumps(body)
    time.sleep(0.2)
    log = served.log()
    assert "invalid request" in log.lower() or "refused before the application" in log
    assert ADMIN_TOKEN not in log and "unconfigured-credential-5d1" not in log
