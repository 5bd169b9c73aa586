"""Shared fixtures: a migrated store in a temporary folder, settings, the app and its client."""
from __future__ import annotations

import base64
import os
import sys

import pytest
import requests_mock

# Tests run in parallel (pytest-xdist, `-n 2`): no process of the suite may share prometheus's
# multiprocess directory with another. Every in-process test counts in its own process's registry,
# and every `integration serve` a test starts makes its own directory (it does when none is set);
# prometheus_client reads the variable on import, so it goes before anything imports it.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

from integration import create_app  # noqa: E402
from integration.config import Config, Secret  # noqa: E402
from integration.services import Services  # noqa: E402
from tests.fakes import FakeClock  # noqa: E402

TESTS_DIR = os.path.dirname(__file__)
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"test-webhook-secret-0123456789ab").decode()
ADMIN_TOKEN = "admin-token-for-tests-7f3a"


def make_config(tmp_path, **overrides) -> Config:
    values = dict(
        database_url=f"sqlite:///{tmp_path}/integration.db",
        zuora_base_url="http://zuora.invalid",
        zuora_client_id="zuora-client",
        zuora_client_secret=Secret("zuora-client-secret-9c1d"),
        billing_base_url="http://billing.invalid",
        billing_api_token=Secret("billing-token-5e7b"),
        billing_webhook_secret=Secret(WEBHOOK_SECRET),
        admin_token=Secret(ADMIN_TOKEN),
        zuora_callout_username="zuora",
        zuora_callout_password=Secret("callout-password-2b8e"),
        lease_seconds=30.0,
    )
    values.update(overrides)
    return Config(**values)


@pytest.fixture
def config(tmp_path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
def services(config) -> Services:
    services = Services.from_config(config)
    services.db.migrate()
    yield services
    services.db.close()


@pytest.fixture
def app(services):
    return create_app(services=services)


@pytest.fixture
def client(app):
    return app.test_client()


def service_env(database_url: str) -> dict:
    """Environment for running the real commands as processes against the store at ``database_url``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ZUORA_", "BILLING_", "ADMIN_")) and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({
        "DATABASE_URL": database_url,
        "ZUORA_BASE_URL": "http://127.0.0.1:9",
        "ZUORA_CLIENT_ID": "zuora-client",
        "ZUORA_CLIENT_SECRET": "zuora-client-secret-9c1d",
        "BILLING_BASE_URL": "http://127.0.0.1:9",
        "BILLING_API_TOKEN": "billing-token-5e7b",
        "BILLING_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "ZUORA_CALLOUT_USERNAME": "zuora",
        "ZUORA_CALLOUT_PASSWORD": "callout-password-2b8e",
        "PYTHONPATH": os.pathsep.join([TESTS_DIR, env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "PYTHONUNBUFFERED": "1",
    })
    return env


@pytest.fixture
def subprocess_env(tmp_path):
    """Environment for running the real commands as processes against a temporary store."""
    return service_env(f"sqlite:///{tmp_path}/integration.db")


@pytest.fixture
def integration_cmd():
    return [sys.executable, "-m", "integration"]


@pytest.fixture
def clock() -> FakeClock:
    """Client tests: time that moves only when the client sleeps (modules may define their own)."""
    return FakeClock()


@pytest.fixture
def mock():
    """Client tests: requests-mock for every HTTP call."""
    with requests_mock.Mocker() as m:
        yield m
