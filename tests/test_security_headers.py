"""Every response carries the security headers, HSTS over HTTPS (as a trusted proxy says, or as the
server saw it), and a redirect never names a host the client chose (issue 23, item 6)."""
from __future__ import annotations

import pytest

from integration import create_app
from integration.services import Services
from integration.web.security import HSTS, same_origin
from tests.conftest import ADMIN_TOKEN, make_config

FORGED = "evil.example"


@pytest.fixture(params=[False, True], ids=["direct", "behind-trusted-proxy"])
def any_client(request, tmp_path):
    services = Services.from_config(make_config(tmp_path, trust_proxy=request.param))
    services.db.migrate()
    yield create_app(services=services).test_client()
    services.db.close()


@pytest.fixture
def proxied_client(tmp_path):
    services = Services.from_config(make_config(tmp_path, trust_proxy=True))
    services.db.migrate()
    yield create_app(services=services).test_client()
    services.db.close()


def assert_strict_headers(response) -> None:
    headers = response.headers
    assert "default-src 'none'" in headers["Content-Security-Policy"], response.status
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path,target", [("/console//mappings", "/console/mappings"), ("/console", "/console/"),
                                         ("/console//failures?code=UNKNOWN", "/console/failures?code=UNKNOWN")])
@pytest.mark.parametrize("forged", [{"Host": FORGED}, {"X-Forwarded-Host": FORGED},
                                    {"Host": FORGED, "X-Forwarded-Host": FORGED, "X-Forwarded-Proto": "https"}],
                         ids=["Host", "X-Forwarded-Host", "both"])
def test_a_redirect_stays_on_the_origin_whatever_host_the_client_names(any_client, path, target, forged):
    response = any_client.get(path, headers=forged)
    assert response.status_code in (301, 302, 308)
    assert response.headers["Location"] == target
    assert FORGED not in str(response.headers)
    assert_strict_headers(response)


def test_every_kind_of_response_carries_the_security_headers(any_client):
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    responses = [any_client.get("/healthz"), any_client.get("/openapi.json"), any_client.get("/nowhere"),
                 any_client.get("/admin/mappings"), any_client.get("/admin/events/evt_x", headers=auth),
                 any_client.put("/healthz"), any_client.post("/webhooks/zuora", data="x", content_type="text/plain"),
                 any_client.get("/console/login"), any_client.get("/console/failures"),
                 any_client.get("/console/static/console.css")]
    assert [r.status_code for r in responses] == [200, 200, 404, 401, 404, 405, 401, 200, 302, 200]
    for response in responses:
        assert_strict_headers(response)
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP: HSTS means nothing there


def test_hsts_over_https_as_the_server_saw_it(any_client):
    for path in ("/healthz", "/console/login", "/console", "/nowhere"):
        response = any_client.get(path, base_url="https://sync.example.com")
        assert response.headers["Strict-Transport-Security"] == HSTS, path


def test_hsts_when_a_trusted_proxy_says_https(proxied_client):
    response = proxied_client.get("/console/login", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"] == HSTS
    assert "Secure" in response.headers.get("Set-Cookie", "")  # the same belief as the session cookie's
    assert "Strict-Transport-Security" not in proxied_client.get("/console/login").headers


def test_no_hsts_when_an_untrusted_client_says_https(client):
    # INTEGRATION_TRUST_PROXY unset: X-Forwarded-Proto is the client's own word, not a proxy's.
    assert "Strict-Transport-Security" not in client.get("/healthz", headers={"X-Forwarded-Proto": "https"}).headers


@pytest.mark.parametrize("location,expected", [
    ("http://evil.example/console/", "/console/"),
    ("https://evil.example:8443/console/failures?code=UNKNOWN#top", "/console/failures?code=UNKNOWN#top"),
    ("//evil.example/console/", "/console/"),
    ("/\\evil.example/console/", "/evil.example/console/"),
    ("http://evil.example//evil.example/x", "/evil.example/x"),
    ("http://evil.example", "/"),
    ("/console/login", "/console/login"),
    ("login", "login"),
])
def test_same_origin_keeps_only_the_path(location, expected):
    assert same_origin(location) == expected
