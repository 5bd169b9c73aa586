"""The shared HTTP machinery: header parsing, backoff, pacing, JSON both ways, the retry loop, the cap."""
from __future__ import annotations

import gzip
import io
import logging
import random
import threading
from decimal import Decimal

import pytest
import requests
import requests.adapters

from integration.clients.answers import require
from integration.clients.bodies import MAX_BODY_BYTES, dumps_json
from integration.clients.http import RemoteClient, header_value, path_param
from integration.clients.pacing import (
    MAX_HINT_SECONDS,
    Pacer,
    parse_number,
    parse_reset,
    parse_retry_after,
    wait_hint,
)
from integration.domain.backoff import Backoff
from integration.domain.errors import (
    AuthFailed,
    InvalidData,
    MalformedResponse,
    SyncError,
    TransientError,
)
from integration_sandbox.server import ServerThread

BASE = "https://remote.test"


class EchoClient(RemoteClient):
    """The smallest concrete client: a fixed bearer, JSON bodies, transient on 429 and 5xx."""

    api = "test"

    def _auth_headers(self):
        return {"Authorization": "Bearer test-secret-token"}

    def _secrets(self):
        return ("test-secret-token",)

    def get(self, thing_id: str):
        endpoint = "/things/{thing_id}"

        def interpret(resp):
            if resp.status_code >= 500 or resp.status_code == 429:
                raise TransientError(f"HTTP {resp.status_code}", retry_after=wait_hint(resp.headers))
            if not 200 <= resp.status_code < 300:
                raise MalformedResponse(f"unexpected HTTP {resp.status_code}")
            return resp.json()

        return self._call("GET", endpoint, self.url(endpoint, thing_id=thing_id), interpret)


# ---------------------------------------------------------------------------------------- headers

def test_parse_number_takes_the_smallest_listed_value():
    assert parse_number("42") == 42
    assert parse_number("49999, 2249999;w=3600, 7;w=60") == 7
    assert parse_number("soon") is None and parse_number(None) is None and parse_number("nan") is None


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0
    wall = 1_700_000_000.0  # 2023-11-14T22:13:20Z
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", wall_clock=lambda: wall) == 30
    assert parse_retry_after("tomorrow-ish") is None
    assert parse_retry_after("99999999999") == MAX_HINT_SECONDS  # a hostile value cannot park us for years


def test_parse_reset_accepts_delta_or_epoch():
    assert parse_reset("600") == 600
    assert parse_reset("1700000090", wall_clock=lambda: 1_700_000_000.0) == 90
    assert parse_reset("x") is None


def test_wait_hint_retry_after_takes_precedence_over_ratelimit_reset():
    """IETF draft: with both, Retry-After MUST take precedence — even when the reset is later or sooner."""
    assert wait_hint({"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "11"}) == 1
    assert wait_hint({"Retry-After": "9", "RateLimit-Remaining": "0", "RateLimit-Reset": "2"}) == 9
    assert wait_hint({"Retry-After": "0", "RateLimit-Remaining": "0", "RateLimit-Reset": "600"}) == 0


def test_wait_hint_uses_the_reset_only_when_the_budget_is_spent():
    # Zuora's own 429 sample: ratelimit-* and no Retry-After (header names are case-insensitive there)
    zuora_sample = requests.structures.CaseInsensitiveDict({"ratelimit-remaining": "0", "ratelimit-reset": "600"})
    assert wait_hint(zuora_sample) == 600
    assert wait_hint({"RateLimit-Remaining": "0, 5;w=3600", "RateLimit-Reset": "7"}) == 7  # the spent window
    assert wait_hint({"RateLimit-Remaining": "3", "RateLimit-Reset": "8"}) is None  # budget left: no wait
    assert wait_hint({"RateLimit-Reset": "8"}) is None  # remaining unknown: not a request to wait
    assert wait_hint({"Retry-After": "soon", "RateLimit-Remaining": "0", "RateLimit-Reset": "4"}) == 4
    assert wait_hint({}) is None


# ---------------------------------------------------------------------------------------- backoff and pacing

def test_backoff_hint_is_the_wait_jitter_never_adds_to_it():
    """Never sooner than the remote asked (a certain refusal) and never later (jitter on top)."""
    backoff, rng = Backoff(base_seconds=0.5, cap_seconds=30.0), random.Random(2)
    for failures in range(10):
        assert backoff.delay(failures, rng, hint=9.0) == 9.0
        assert backoff.delay(failures, rng, hint=0.25) == 0.25  # even below what the jitter would pick
        assert backoff.delay(failures, rng, hint=0.0) == 0.0


def test_pacer_waits_for_reset_when_budget_exhausted(clock):
    pacer = Pacer(clock=clock, sleep=clock.sleep, max_wait=60)
    pacer.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "15"})
    clock.now += 5
    pacer.wait_turn()
    assert clock.sleeps == [10]
    pacer.wait_turn()
    assert clock.sleeps == [10]


def test_pacer_threshold_and_clearing(clock):
    pacer = Pacer(clock=clock, sleep=clock.sleep, max_wait=60, threshold=2)
    pacer.observe({"RateLimit-Remaining": "2", "RateLimit-Reset": "4"})
    pacer.observe({"RateLimit-Remaining": "500", "RateLimit-Reset": "60"})  # a new window opened
    pacer.wait_turn()
    assert clock.sleeps == []
    pacer.observe({"RateLimit-Remaining": "1", "RateLimit-Reset": "4"})
    pacer.wait_turn()
    assert clock.sleeps == [4]


def test_pacer_ignores_garbage_headers(clock):
    pacer = Pacer(clock=clock, sleep=clock.sleep, max_wait=60)
    pacer.observe({"RateLimit-Remaining": "none", "RateLimit-Reset": "later", "Concurrency-Limit-Remaining": ""})
    pacer.observe({"RateLimit-Remaining": "0"})  # no reset given: nothing to wait for
    pacer.wait_turn()
    assert clock.sleeps == []


def test_pacer_follows_retry_after_not_a_later_reset(clock):
    """The issue's 429: Retry-After 1 next to a spent window resetting in 11 s — the pacer waits 1 s."""
    pacer = Pacer(clock=clock, sleep=clock.sleep, max_wait=60)
    pacer.observe({"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "11",
                   "Concurrency-Limit-Remaining": "0"})
    pacer.wait_turn()
    assert clock.sleeps == [1]
    pacer.wait_turn()
    assert clock.sleeps == [1]


def test_pacer_follows_a_retry_after_longer_than_the_reset(clock):
    pacer = Pacer(clock=clock, sleep=clock.sleep, max_wait=60)
    pacer.observe({"Retry-After": "8", "RateLimit-Remaining": "0", "RateLimit-Reset": "2"})
    pacer.wait_turn()
    assert clock.sleeps == [8]


def test_pacer_without_retry_after_waits_for_the_spent_windows_reset(clock):
    pacer = Pacer(clock=clock, sleep=clock.sleep, max_wait=60)
    pacer.observe({"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "11"})
    clock.now += 1  # we waited what the server asked; its next answer names no Retry-After
    pacer.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "10"})
    pacer.wait_turn()
    assert clock.sleeps == [10]


def test_pacer_beyond_budget_hands_on_the_retry_after_not_the_reset(clock):
    pacer = Pacer(clock=clock, sleep=clock.sleep, max_wait=30)
    pacer.observe({"Retry-After": "45", "RateLimit-Remaining": "0", "RateLimit-Reset": "3600"})
    with pytest.raises(TransientError) as caught:
        pacer.wait_turn()
    assert caught.value.retry_after == 45
    assert clock.sleeps == []


def test_pacer_refuses_a_wait_beyond_budget(clock):
    pacer = Pacer(clock=clock, sleep=clock.sleep, max_wait=30)
    pacer.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "3600"})
    with pytest.raises(TransientError) as caught:
        pacer.wait_turn()
    assert caught.value.retry_after == 3600
    assert clock.sleeps == []


# ---------------------------------------------------------------------------------------- JSON and validation

def test_dumps_json_writes_decimals_exactly():
    body = {"amount": Decimal("12345678901234567890.10"), "qty": Decimal("1E+2"), "n": 3, "f": 0.5,
            "ok": True, "none": None, "items": [Decimal("-0.01")], "name": "Zoë \"Q\""}
    assert dumps_json(body) == ('{"amount":12345678901234567890.10,"qty":100,"n":3,"f":0.5,"ok":true,'
                                '"none":null,"items":[-0.01],"name":"Zoë \\"Q\\""}').encode()


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), float("nan"), {1: "x"}, object()])
def test_dumps_json_refuses_what_no_api_accepts(bad):
    with pytest.raises(InvalidData):
        dumps_json({"x": bad})


def test_require_names_call_and_field():
    assert require({"a": {"b": "v"}}, "a.b", "Z GET /x") == "v"
    with pytest.raises(MalformedResponse, match=r"^Z GET /x: response has no a\.b$"):
        require({"a": {"b": ""}}, "a.b", "Z GET /x")
    with pytest.raises(MalformedResponse):
        require({"a": "flat"}, "a.b", "Z GET /x")


def test_path_param_quotes_and_refuses():
    assert path_param("id", "a/b c?d#e") == "a%2Fb%20c%3Fd%23e"
    assert path_param("id", "inv.2024.1") == "inv.2024.1"
    for bad in ("", "   ", ".", "..", "a\x00b", "x" * 256, 5, None):
        with pytest.raises(InvalidData) as caught:
            path_param("id", bad)
        assert caught.value.field == "id"


def test_header_value_rules():
    assert header_value("k", "abc-123:x", max_length=10) == "abc-123:x"
    for bad in ("", "é", "a\r\nX-Evil: 1", "x" * 11):
        with pytest.raises(InvalidData):
            header_value("k", bad, max_length=10)


# ---------------------------------------------------------------------------------------- the retry loop

def test_retry_loop_counts_attempts_and_keeps_the_hint(mock, clock):
    mock.get(f"{BASE}/things/t1", status_code=503, headers={"Retry-After": "2"})
    client = EchoClient(BASE, clock=clock, sleep=clock.sleep, max_attempts=3, rng=random.Random(0))
    with pytest.raises(TransientError) as caught:
        client.get("t1")
    assert len(mock.request_history) == 3
    assert len(clock.sleeps) == 2 and all(s >= 2 for s in clock.sleeps)
    assert caught.value.retry_after == 2
    assert str(caught.value) == "HTTP 503 (gave up after 3 attempts)"


def test_retry_after_is_the_wait_even_next_to_a_far_reset(mock, clock):
    """The issue's case: 429 with Retry-After 1 and RateLimit-Reset 11 — wait 1 s, once, then the answer."""
    mock.get(f"{BASE}/things/t1", [
        {"status_code": 429, "headers": {"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "11"}},
        {"json": {"id": "t1"}, "headers": {"RateLimit-Remaining": "99", "RateLimit-Reset": "10"}},
    ])
    client = EchoClient(BASE, clock=clock, sleep=clock.sleep, rng=random.Random(0))
    assert client.get("t1") == {"id": "t1"}
    assert clock.sleeps == [1]  # the backoff's 1 s; the pacer adds nothing on top


def test_gave_up_hands_the_inbox_the_servers_wait_not_the_reset(mock, clock):
    """After the attempts run out, the event is parked for what the server asked (1 s), not the reset (600 s)."""
    mock.get(f"{BASE}/things/t1", status_code=503,
             headers={"Retry-After": "1", "RateLimit-Remaining": "0", "RateLimit-Reset": "600"})
    client = EchoClient(BASE, clock=clock, sleep=clock.sleep, max_attempts=4, rng=random.Random(0))
    with pytest.raises(TransientError) as caught:
        client.get("t1")
    assert caught.value.retry_after == 1
    assert clock.sleeps == [1, 1, 1]
    assert len(mock.request_history) == 4


def test_zuora_style_429_without_retry_after_waits_the_reset_and_hands_it_on(mock, clock):
    """Zuora's sample 429: ratelimit-remaining 0, ratelimit-reset 600, no Retry-After. Beyond the
    client's budget, so no sleep: the event goes back to the inbox with the 600 s the server named."""
    mock.get(f"{BASE}/things/t1", status_code=503, headers={"ratelimit-remaining": "0", "ratelimit-reset": "600"})
    client = EchoClient(BASE, clock=clock, sleep=clock.sleep, max_retry_seconds=60)
    with pytest.raises(TransientError) as caught:
        client.get("t1")
    assert caught.value.retry_after == 600
    assert clock.sleeps == []
    assert len(mock.request_history) == 1


def test_single_attempt_budget_does_not_sleep(mock, clock):
    mock.get(f"{BASE}/things/t1", exc=requests.exceptions.ConnectionError("refused"))
    client = EchoClient(BASE, clock=clock, sleep=clock.sleep, max_attempts=1)
    with pytest.raises(TransientError, match="connection failed"):
        client.get("t1")
    assert clock.sleeps == []


def test_401_without_refresh_is_auth_failed(mock, clock):
    mock.get(f"{BASE}/things/t1", status_code=401, json={"message": "nope test-secret-token"})
    with pytest.raises(AuthFailed) as caught:
        EchoClient(BASE, clock=clock, sleep=clock.sleep).get("t1")
    assert str(caught.value) == "test GET /things/{thing_id}: credentials rejected (HTTP 401: nope ***)"


def test_unsendable_request_is_permanent(mock, clock):
    mock.get(f"{BASE}/things/t1", exc=requests.exceptions.InvalidHeader("bad header"))
    with pytest.raises(SyncError) as caught:
        EchoClient(BASE, clock=clock, sleep=clock.sleep).get("t1")
    assert not isinstance(caught.value, TransientError)
    assert len(mock.request_history) == 1


def test_redirects_are_not_followed(mock, clock):
    mock.get(f"{BASE}/things/t1", status_code=302, headers={"Location": "https://elsewhere.test/steal"})
    mock.get("https://elsewhere.test/steal", json={"stolen": True})
    client = EchoClient(BASE, clock=clock, sleep=clock.sleep)
    # The transport hands the 302 itself to the client's reader (which refuses it) instead of following it.
    with pytest.raises(MalformedResponse, match="unexpected HTTP 302"):
        client.get("t1")
    assert [r.hostname for r in mock.request_history] == ["remote.test"]


class HoldingAdapter(requests.adapters.BaseAdapter):
    """A transport that keeps each call open until a third one shows up or 0.1 s pass, recording the peak.

    (requests-mock serialises its sends, so it cannot show how many calls run at once.)
    """

    def __init__(self):
        super().__init__()
        self.in_flight = 0
        self.peak = 0
        self.calls = 0
        self._cond = threading.Condition()

    def send(self, request, **kwargs):
        with self._cond:
            self.calls += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.in_flight > 2, timeout=0.1)
            self.in_flight -= 1
        resp = requests.Response()
        resp.status_code = 200
        resp._content = b'{"id": "t"}'
        resp.request = request
        resp.url = request.url
        return resp

    def close(self):
        pass


def test_max_concurrency_caps_calls_in_flight():
    adapter = HoldingAdapter()
    session = requests.Session()
    session.mount("https://", adapter)
    client = EchoClient(BASE, max_concurrency=2, session=session)
    threads = [threading.Thread(target=client.get, args=("t1",)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert adapter.calls == 6
    assert adapter.peak == 2


def test_without_a_cap_calls_do_overlap():
    """The control for the test above: the adapter does see overlap when the client allows it."""
    adapter = HoldingAdapter()
    session = requests.Session()
    session.mount("https://", adapter)
    client = EchoClient(BASE, max_concurrency=10, session=session)
    threads = [threading.Thread(target=client.get, args=("t1",)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert adapter.peak > 2


def test_log_line_fields_and_no_credentials(mock, clock, caplog):
    caplog.set_level(logging.DEBUG)
    mock.get(f"{BASE}/things/secret-id-123", json={"id": "t"})
    EchoClient(BASE, clock=clock, sleep=clock.sleep).get("secret-id-123")
    [line] = [r for r in caplog.records if r.name == "integration.remote"]
    assert line.getMessage().startswith("test GET /things/{thing_id} -> 200 in ")
    assert (line.api, line.method, line.endpoint, line.status, line.attempt, line.event_id) == (
        "test", "GET", "/things/{thing_id}", "200", 1, None)
    assert "test-secret-token" not in caplog.text
    assert "secret-id-123" not in line.getMessage()


def test_clean_scrubs_and_bounds(clock):
    client = EchoClient(BASE, clock=clock, sleep=clock.sleep)
    assert client.clean("a test-secret-token b\r\nc") == "a *** b  c"
    assert len(client.clean("x" * 5000)) == 501


def test_constructor_validation():
    for bad in ("", "zuora.test", "file:///etc/passwd"):
        with pytest.raises(ValueError, match="base_url must be an http"):
            EchoClient(bad)
    with pytest.raises(ValueError, match="max_concurrency and max_attempts must be"):
        EchoClient(BASE, max_concurrency=0)
    assert repr(EchoClient(BASE + "/")) == "EchoClient(base_url='https://remote.test')"


def test_pacer_resumes_at_the_tightest_window_end_not_a_rounded_up_reset():
    """RateLimit-Reset is whole seconds rounded up: the earliest (arrival + reset) of a window is its end."""
    now = [0.0]
    slept = []
    pacer = Pacer(clock=lambda: now[0], sleep=slept.append, max_wait=60)
    pacer.observe({"RateLimit-Remaining": "5", "RateLimit-Reset": "1"})   # window ends by 1.0
    now[0] = 0.7
    pacer.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "1"})   # says ≤ 1.7; 1.0 is tighter
    pacer.wait_turn()
    assert slept == [pytest.approx(0.3)]
    now[0] = 1.05
    pacer.observe({"RateLimit-Remaining": "9", "RateLimit-Reset": "1"})   # a new window: budget is back
    pacer.wait_turn()
    assert len(slept) == 1
    now[0] = 1.5
    pacer.observe({"RateLimit-Remaining": "0", "RateLimit-Reset": "1"})
    pacer.wait_turn()
    assert slept[-1] == pytest.approx(0.55)  # until 2.05, the new window's end


# ---------------------------------------------------------------------------------------- the body cap

class EndlessBody(io.RawIOBase):
    """A response body that never ends on its own (it stops at ``stop`` so a regression fails, not hangs)."""

    def __init__(self, stop: int = 4 * MAX_BODY_BYTES):
        self.read_bytes = 0
        self.stop = stop

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.stop - self.read_bytes)
        buffer[:n] = b"x" * n
        self.read_bytes += n
        return n


def test_body_over_the_cap_is_malformed_and_named_without_reading_it_all(mock, clock):
    body = EndlessBody()
    mock.get(f"{BASE}/things/t1", body=body)
    client = EchoClient(BASE, clock=clock, sleep=clock.sleep)
    with pytest.raises(MalformedResponse) as caught:
        client.get("t1")
    assert str(caught.value) == (f"test GET /things/{{thing_id}}: response body larger than {MAX_BODY_BYTES} "
                                 f"bytes; not read (HTTP 200)")
    assert MAX_BODY_BYTES < body.read_bytes <= MAX_BODY_BYTES + 2 * 64 * 1024  # stopped just past the cap
    assert len(mock.request_history) == 1  # permanent: the same oversized answer is not fetched again


def test_declared_length_over_the_cap_is_refused_unread(mock, clock):
    body = EndlessBody()
    mock.get(f"{BASE}/things/t1", body=body, headers={"Content-Length": str(MAX_BODY_BYTES + 1)})
    with pytest.raises(MalformedResponse, match="larger than"):
        EchoClient(BASE, clock=clock, sleep=clock.sleep).get("t1")
    assert body.read_bytes == 0


def test_body_of_exactly_the_cap_is_read(mock, clock):
    text = b'{"id": "' + b"x" * (MAX_BODY_BYTES - 10) + b'"}'
    assert len(text) == MAX_BODY_BYTES
    mock.get(f"{BASE}/things/t1", content=text)
    assert len(EchoClient(BASE, clock=clock, sleep=clock.sleep).get("t1")["id"]) == MAX_BODY_BYTES - 10


def test_oversized_error_page_on_a_transient_status_stays_transient(mock, clock):
    """A gateway's huge 503 page must not turn a passing outage into a permanent failure."""
    mock.get(f"{BASE}/things/t1", [
        {"status_code": 503, "body": EndlessBody(), "headers": {"Retry-After": "2"}},
        {"json": {"id": "t1"}},
    ])
    assert EchoClient(BASE, clock=clock, sleep=clock.sleep).get("t1") == {"id": "t1"}
    assert clock.sleeps == [2]


def _oversized_app():
    from flask import Flask, Response

    app = Flask("oversized")
    chunk = b"y" * 65536

    @app.get("/things/streamed")
    def streamed():  # chunked transfer, no Content-Length: only counting the bytes can stop it
        return Response((chunk for _ in range(MAX_BODY_BYTES // len(chunk) + 16)), mimetype="application/json")

    @app.get("/things/bomb")
    def bomb():  # ~11 KiB on the wire, 11 MiB once decoded
        packed = gzip.compress(b" " * (MAX_BODY_BYTES + 1024 * 1024))
        return Response(packed, mimetype="application/json", headers={"Content-Encoding": "gzip"})

    @app.get("/things/small")
    def small():
        return {"id": "small"}

    return app


def test_oversized_answers_over_real_http(clock):
    with ServerThread(_oversized_app()) as server:
        client = EchoClient(server.url, clock=clock, sleep=clock.sleep)
        for thing in ("streamed", "bomb"):
            with pytest.raises(MalformedResponse, match=f"test GET /things/{{thing_id}}: response body larger "
                                                        f"than {MAX_BODY_BYTES} bytes"):
                client.get(thing)
        assert client.get("small") == {"id": "small"}  # the client (and its connection pool) still works
