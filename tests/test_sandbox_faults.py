"""Fault switches, rate limiting and concurrency limiting shared by the sandboxes."""
from __future__ import annotations

import threading
import time

import flask
import pytest
import requests

from integration_sandbox.faults import NOMINAL_RATE_LIMIT, Faults, install
from integration_sandbox.server import ServerThread


class FakeClock:
    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SleepRecorder:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make_app(faults: Faults, **install_kwargs) -> flask.Flask:
    app = flask.Flask("faults-test")
    install(app, faults, api_name="test", **install_kwargs)

    @app.get("/thing")
    def thing():
        return {"ok": True}

    @app.get("/_sandbox/ping")
    def ping():
        return {"pong": True}

    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


# -- Faults.configure / snapshot / reset --------------------------------------------------------------

def test_defaults_and_snapshot(clock):
    f = Faults(clock=clock)
    snap = f.snapshot()
    assert snap == {"latency_ms": 0, "error_rate": 0.0, "error_status": 500, "hang_rate": 0.0, "hang_seconds": 30.0,
                    "rate_limit": None, "rate_window_seconds": 1.0, "concurrency_limit": None, "seed": None,
                    "inject_statuses": [], "retry_after": 1,
                    "counters": {"requests": 0, "rate_limited": 0, "concurrency_limited": 0,
                                 "injected_errors": 0, "hangs": 0, "in_flight": 0}}


@pytest.mark.parametrize("settings, message", [
    ({"nope": 1}, "unknown fault setting: nope"),
    ({"latency_ms": -1}, "latency_ms must be an integer 0..600000"),
    ({"latency_ms": 1.5}, "latency_ms must be an integer 0..600000"),
    ({"error_rate": 1.5}, "error_rate must be a number between 0 and 1"),
    ({"error_rate": True}, "error_rate must be a number between 0 and 1"),
    ({"hang_rate": "0.5"}, "hang_rate must be a number between 0 and 1"),
    ({"error_status": 404}, "error_status must be 500 or 503"),
    ({"hang_seconds": -2}, "hang_seconds must be a number 0..600"),
    ({"rate_limit": 0}, "rate_limit must be a positive integer or null"),
    ({"concurrency_limit": "4"}, "concurrency_limit must be a positive integer or null"),
    ({"rate_window_seconds": 0}, "rate_window_seconds must be a number > 0 and <= 86400"),
    ({"seed": 1.5}, "seed must be an integer or null"),
    ({"inject_statuses": [404]}, "inject_statuses must be a list of at most 1000 of 429, 500, 503"),
    ({"inject_statuses": 429}, "inject_statuses must be a list of at most 1000 of 429, 500, 503"),
    ({"inject_statuses": [429] * 1001}, "inject_statuses must be a list of at most 1000 of 429, 500, 503"),
    ({"retry_after": -1}, "retry_after must be an integer 0..86400 or null"),
    ({"retry_after": 1.5}, "retry_after must be an integer 0..86400 or null"),
])
def test_configure_rejects_bad_settings_naming_them(clock, settings, message):
    f = Faults(clock=clock)
    with pytest.raises(ValueError) as err:  # noqa: PT011 - the message is asserted below, per case
        f.configure(**settings)
    assert str(err.value) == message


def test_configure_is_all_or_nothing(clock):
    f = Faults(clock=clock)
    with pytest.raises(ValueError, match="error_rate must be a number between 0 and 1"):
        f.configure(latency_ms=50, error_rate=2)
    assert f.snapshot()["latency_ms"] == 0


def test_reset_returns_to_constructor_settings(clock):
    f = Faults(rate_limit=5, concurrency_limit=3, clock=clock)
    f.configure(rate_limit=None, latency_ms=10, error_rate=0.5, seed=3)
    f.reset()
    snap = f.snapshot()
    assert (snap["rate_limit"], snap["concurrency_limit"], snap["latency_ms"], snap["error_rate"], snap["seed"]) == \
        (5, 3, 0, 0.0, None)


# -- hooks ------------------------------------------------------------------------------------------------

def test_error_rate_one_fails_every_request_with_error_status(clock):
    f = Faults(clock=clock)
    client = make_app(f).test_client()
    f.configure(error_rate=1.0)
    for _ in range(3):
        r = client.get("/thing")
        assert r.status_code == 500
        assert r.get_json() == {"message": "injected test fault"}
    f.configure(error_status=503)
    r = client.get("/thing")
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert f.snapshot()["counters"]["injected_errors"] == 4


def test_inject_statuses_answers_the_next_requests_in_order_then_stops(clock):
    """A deterministic storm: each listed status once, in order; an injected 429 reports its window spent."""
    f = Faults(clock=clock)
    client = make_app(f).test_client()
    f.configure(inject_statuses=[429, 503, 500], rate_window_seconds=60)
    first, second, third, fourth = (client.get("/thing") for _ in range(4))
    assert [r.status_code for r in (first, second, third, fourth)] == [429, 503, 500, 200]
    assert (first.headers["Retry-After"], first.headers["RateLimit-Remaining"], first.headers["RateLimit-Reset"]) == \
        ("1", "0", "60")
    assert second.headers["Retry-After"] == "1" and second.headers["RateLimit-Remaining"] != "0"
    assert "Retry-After" not in third.headers
    assert "Retry-After" not in fourth.headers and fourth.headers["RateLimit-Remaining"] != "0"
    snap = f.snapshot()
    assert snap["inject_statuses"] == [] and snap["counters"]["injected_errors"] == 3
    assert client.get("/_sandbox/ping").status_code == 200  # exempt paths never consume an injection


def test_injected_retry_after_is_configurable_or_absent(clock):
    f = Faults(clock=clock)
    client = make_app(f).test_client()
    f.configure(inject_statuses=[503], retry_after=7)
    assert client.get("/thing").headers["Retry-After"] == "7"
    f.configure(inject_statuses=[429], retry_after=None)  # Zuora's own 429 sample: ratelimit-* only
    limited = client.get("/thing")
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    assert limited.headers["RateLimit-Remaining"] == "0"


def test_inject_statuses_over_http_endpoint(clock):
    f = Faults(clock=clock)
    client = make_app(f).test_client()
    r = client.post("/_sandbox/faults", json={"inject_statuses": [429, 429]})
    assert r.status_code == 200 and r.get_json()["inject_statuses"] == [429, 429]
    bad = client.post("/_sandbox/faults", json={"inject_statuses": [418]})
    assert bad.status_code == 400 and "inject_statuses" in bad.get_json()["detail"]


def test_error_body_from_keyword_and_from_app_config(clock):
    f = Faults(clock=clock)
    f.configure(error_rate=1.0)
    client = make_app(f, error_body=lambda status, message: {"kw": status}).test_client()
    assert client.get("/thing").get_json() == {"kw": 500}

    app = make_app(Faults(clock=clock))
    app.config["SANDBOX_ERROR_BODY"] = lambda status, message: {"cfg": status, "msg": message}
    app.extensions["test_faults"].configure(error_rate=1.0)
    assert app.test_client().get("/thing").get_json() == {"cfg": 500, "msg": "injected test fault"}


def test_latency_is_applied_through_the_injected_sleep(clock, sleeps):
    f = Faults(clock=clock, sleep=sleeps)
    client = make_app(f).test_client()
    f.configure(latency_ms=250)
    assert client.get("/thing").status_code == 200
    assert sleeps.calls == [0.25]


def test_hang_sleeps_hang_seconds_then_answers_504(clock, sleeps):
    f = Faults(clock=clock, sleep=sleeps)
    client = make_app(f).test_client()
    f.configure(hang_rate=1.0, hang_seconds=30)
    r = client.get("/thing")
    assert r.status_code == 504
    assert r.get_json() == {"message": "gateway timeout"}
    assert sleeps.calls == [30.0]
    assert f.snapshot()["counters"]["hangs"] == 1


def test_seeded_faults_are_deterministic(clock):
    def run() -> list[int]:
        f = Faults(clock=clock)
        f.configure(error_rate=0.5, seed=7)
        client = make_app(f).test_client()
        return [client.get("/thing").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert set(first) == {200, 500}


def test_rate_limit_fixed_window_429_with_retry_after_and_headers(clock):
    f = Faults(rate_limit=2, rate_window_seconds=10, clock=clock)
    client = make_app(f).test_client()
    r1 = client.get("/thing")
    assert (r1.status_code, r1.headers["RateLimit-Limit"], r1.headers["RateLimit-Remaining"],
            r1.headers["RateLimit-Reset"]) == (200, "2, 2;w=10", "1", "10")
    clock.advance(4)
    r2 = client.get("/thing")
    assert (r2.status_code, r2.headers["RateLimit-Remaining"], r2.headers["RateLimit-Reset"]) == (200, "0", "6")
    r3 = client.get("/thing")
    assert r3.status_code == 429
    assert r3.get_json() == {"message": "rate limit exceeded"}
    assert (r3.headers["Retry-After"], r3.headers["RateLimit-Remaining"], r3.headers["RateLimit-Reset"]) == \
        ("6", "0", "6")
    clock.advance(6)  # the window ends
    r4 = client.get("/thing")
    assert (r4.status_code, r4.headers["RateLimit-Remaining"]) == (200, "1")
    assert f.snapshot()["counters"]["rate_limited"] == 1


def test_rate_headers_on_every_response_even_when_unlimited_and_not_on_exempt_paths(clock):
    f = Faults(clock=clock)
    client = make_app(f).test_client()
    r = client.get("/no-such-route")
    assert r.status_code == 404
    assert r.headers["RateLimit-Limit"] == f"{NOMINAL_RATE_LIMIT}, {NOMINAL_RATE_LIMIT};w=1"
    assert r.headers["RateLimit-Remaining"] == str(NOMINAL_RATE_LIMIT - 1)
    assert "Concurrency-Limit-Limit" not in r.headers
    exempt = client.get("/_sandbox/ping")
    assert exempt.status_code == 200
    assert "RateLimit-Limit" not in exempt.headers


def test_exempt_paths_skip_faults(clock):
    f = Faults(clock=clock)
    client = make_app(f).test_client()
    f.configure(error_rate=1.0)
    assert client.get("/_sandbox/ping").status_code == 200
    assert client.get("/thing").status_code == 500


def test_concurrency_limit_over_real_http():
    f = Faults(concurrency_limit=1)
    app = make_app(f)
    release = threading.Event()

    @app.get("/block")
    def block():
        release.wait(5)
        return {"done": True}

    with ServerThread(app) as server:
        results: dict = {}
        t = threading.Thread(target=lambda: results.update(first=requests.get(f"{server.url}/block", timeout=10)))
        t.start()
        deadline = time.monotonic() + 5
        while f.snapshot()["counters"]["in_flight"] < 1:
            assert time.monotonic() < deadline, "first request never arrived"
            time.sleep(0.005)
        second = requests.get(f"{server.url}/thing", timeout=5)
        assert second.status_code == 429
        assert second.json() == {"message": "concurrency limit exceeded"}
        assert (second.headers["Retry-After"], second.headers["Concurrency-Limit-Limit"],
                second.headers["Concurrency-Limit-Remaining"]) == ("1", "1", "0")
        release.set()
        t.join(5)
        assert results["first"].status_code == 200
        third = requests.get(f"{server.url}/thing", timeout=5)
        assert third.status_code == 200
        assert third.headers["Concurrency-Limit-Remaining"] == "0"  # counts the request being answered
    snap = f.snapshot()["counters"]
    assert (snap["in_flight"], snap["concurrency_limited"]) == (0, 1)


# -- /_sandbox/faults -----------------------------------------------------------------------------------

def test_faults_endpoints(clock):
    f = Faults(rate_limit=9, clock=clock)
    client = make_app(f).test_client()
    assert client.get("/_sandbox/faults").get_json()["rate_limit"] == 9
    r = client.post("/_sandbox/faults", json={"error_rate": 0.25, "latency_ms": 5})
    assert r.status_code == 200
    assert (r.get_json()["error_rate"], r.get_json()["latency_ms"]) == (0.25, 5)
    assert f.snapshot()["error_rate"] == 0.25
    r = client.delete("/_sandbox/faults")
    assert r.status_code == 200
    assert (r.get_json()["error_rate"], r.get_json()["rate_limit"]) == (0.0, 9)


@pytest.mark.parametrize("payload, detail", [
    ({"bogus": 1}, "unknown fault setting: bogus"),
    ({"error_status": 404}, "error_status must be 500 or 503"),
    ({"latency_ms": 10, "error_rate": 7}, "error_rate must be a number between 0 and 1"),
    ([1, 2], "body must be a JSON object"),
    ({"counters": {}}, "counters are read-only"),
])
def test_faults_endpoint_rejects_bad_input(clock, payload, detail):
    f = Faults(clock=clock)
    client = make_app(f).test_client()
    r = client.post("/_sandbox/faults", json=payload)
    assert r.status_code == 400
    assert r.get_json() == {"error": "invalid_fault", "detail": detail}
    assert f.snapshot()["latency_ms"] == 0


def test_faults_endpoint_rejects_non_json(clock):
    client = make_app(Faults(clock=clock)).test_client()
    r = client.post("/_sandbox/faults", data="latency_ms=5", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400
    assert r.get_json() == {"error": "invalid_fault", "detail": "body must be a JSON object"}
