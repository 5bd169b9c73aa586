"""`integration sandbox`: both sandboxes as a process, printing the service's settings for them
as a block of shell `export` lines that can be sourced as is."""
import os
import shlex
import signal
import subprocess

import pytest
import requests

from tests.e2e_stack import free_port, read_until
from tests.test_sandbox_zuora import valid_account
from tests.test_worker import wait_for

EXPORTED = {"ZUORA_BASE_URL", "ZUORA_CLIENT_ID", "ZUORA_CLIENT_SECRET", "ZUORA_CALLOUT_USERNAME",
            "ZUORA_CALLOUT_PASSWORD", "BILLING_BASE_URL", "BILLING_API_TOKEN", "BILLING_WEBHOOK_SECRET"}


def start_sandbox(integration_cmd, env, *args):
    """The running command and the variables its block exports, read the way a shell reads them."""
    proc = subprocess.Popen([*integration_cmd, "sandbox", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    block = read_until(proc, "Press Ctrl+C", timeout=30)
    sourced = subprocess.run(["bash", "-c", 'source /dev/stdin; env -0'], input=block, env={"PATH": os.defpath},
                             capture_output=True, text=True, timeout=30, check=True)
    exported = dict(item.split("=", 1) for item in sourced.stdout.split("\0") if "=" in item)
    for raw in block.splitlines():
        assert raw.startswith(("#", "export ")), f"not shell: {raw!r}"
    return proc, block, {k: v for k, v in exported.items() if k in EXPORTED}


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    return proc.returncode


def test_sandbox_prints_a_sourceable_block_whose_credentials_work(integration_cmd, subprocess_env):
    zuora_port, billing_port = free_port(), free_port()
    proc, block, found = start_sandbox(integration_cmd, subprocess_env, "--zuora-port", str(zuora_port),
                                       "--billing-port", str(billing_port))
    try:
        assert set(found) == EXPORTED
        assert found["ZUORA_BASE_URL"] == f"http://127.0.0.1:{zuora_port}"
        assert found["BILLING_BASE_URL"] == f"http://127.0.0.1:{billing_port}"
        # A value shell would split or expand is quoted (the webhook secret is base64: + / =).
        assert f"export BILLING_WEBHOOK_SECRET={shlex.quote(found['BILLING_WEBHOOK_SECRET'])}" in block
        token = requests.post(f"{found['ZUORA_BASE_URL']}/oauth/token", timeout=10, data={
            "client_id": found["ZUORA_CLIENT_ID"], "client_secret": found["ZUORA_CLIENT_SECRET"],
            "grant_type": "client_credentials"})
        assert token.status_code == 200 and token.json()["token_type"] == "bearer"
        billing = requests.get(f"{found['BILLING_BASE_URL']}/customers/nobody", timeout=10,
                               headers={"Authorization": f"Bearer {found['BILLING_API_TOKEN']}"})
        assert billing.status_code == 404
        assert found["BILLING_WEBHOOK_SECRET"].startswith("whsec_")
        config = requests.get(f"{found['ZUORA_BASE_URL']}/_sandbox/config", timeout=10).json()
        assert config["callout_username"] == found["ZUORA_CALLOUT_USERNAME"] and config["callout_password_set"]
    finally:
        assert stop(proc) == 0


def test_sandbox_block_uses_the_given_callout_credentials_and_webhook_secret(integration_cmd, subprocess_env):
    secret = subprocess_env["BILLING_WEBHOOK_SECRET"]
    proc, _, found = start_sandbox(integration_cmd, subprocess_env, "--zuora-port", "0", "--billing-port", "0",
                                   "--callout-username", "me", "--callout-password", "it's $ecret",
                                   "--webhook-secret", secret)
    try:
        assert found["ZUORA_CALLOUT_USERNAME"] == "me"
        assert found["ZUORA_CALLOUT_PASSWORD"] == "it's $ecret"
        assert found["BILLING_WEBHOOK_SECRET"] == secret
    finally:
        assert stop(proc) == 0


@pytest.mark.slow
def test_first_hour_source_the_block_check_serve_and_a_zuora_account_reaches_billing(
        integration_cmd, subprocess_env, tmp_path):
    """What the README tells a newcomer to do: sandbox, source its block, migrate, check, serve."""
    service = f"http://127.0.0.1:{free_port()}"
    sandbox, _, found = start_sandbox(integration_cmd, subprocess_env, "--zuora-port", "0", "--billing-port", "0",
                                      "--callout-url", f"{service}/webhooks/zuora",
                                      "--billing-webhook-url", f"{service}/webhooks/billing")
    env = {k: v for k, v in subprocess_env.items() if k not in EXPORTED}
    env.update(found, ADMIN_TOKEN="admin-token-for-the-first-hour", DATABASE_URL=f"sqlite:///{tmp_path}/first.db")
    serve = None
    try:
        subprocess.run([*integration_cmd, "migrate"], env=env, check=True, capture_output=True, timeout=60)
        check = subprocess.run([*integration_cmd, "check"], env=env, capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout
        serve = subprocess.Popen([*integration_cmd, "serve", "--host", "127.0.0.1", "--port", service.rsplit(":", 1)[1],
                                  "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _ready(service))
        token = requests.post(f"{found['ZUORA_BASE_URL']}/oauth/token", timeout=10, data={
            "client_id": found["ZUORA_CLIENT_ID"], "client_secret": found["ZUORA_CLIENT_SECRET"],
            "grant_type": "client_credentials"}).json()["access_token"]
        created = requests.post(f"{found['ZUORA_BASE_URL']}/v1/accounts", json=valid_account(), timeout=10,
                                headers={"Authorization": f"Bearer {token}"}).json()
        customer = f"{found['BILLING_BASE_URL']}/customers/{created['accountId']}"
        billing = {"Authorization": f"Bearer {found['BILLING_API_TOKEN']}"}
        # The callout passed the service's Basic check with the printed credentials, and the worker synced it.
        wait_for(lambda: requests.get(customer, headers=billing, timeout=10).status_code == 200, timeout=60)
    finally:
        if serve is not None:
            assert stop(serve) == 0
        assert stop(sandbox) == 0


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # a request made while gunicorn boots waits in its backlog
        return False
