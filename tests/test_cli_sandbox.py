"""`integration sandbox`: both sandboxes as a process, printing the credentials they accept."""
import re
import signal
import subprocess

import requests

from tests.e2e_stack import free_port, read_until


def test_sandbox_command_serves_both_apis_with_the_printed_credentials(integration_cmd, subprocess_env):
    zuora_port, billing_port = free_port(), free_port()
    proc = subprocess.Popen([*integration_cmd, "sandbox", "--zuora-port", str(zuora_port),
                             "--billing-port", str(billing_port)], env=subprocess_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        text = read_until(proc, "Press Ctrl+C", timeout=30)
        found = dict(re.findall(r"(ZUORA_CLIENT_ID|ZUORA_CLIENT_SECRET|BILLING_API_TOKEN|BILLING_WEBHOOK_SECRET)=(\S+)",
                                text))
        assert set(found) == {"ZUORA_CLIENT_ID", "ZUORA_CLIENT_SECRET", "BILLING_API_TOKEN", "BILLING_WEBHOOK_SECRET"}
        token = requests.post(f"http://127.0.0.1:{zuora_port}/oauth/token", timeout=10, data={
            "client_id": found["ZUORA_CLIENT_ID"], "client_secret": found["ZUORA_CLIENT_SECRET"],
            "grant_type": "client_credentials"})
        assert token.status_code == 200 and token.json()["token_type"] == "bearer"
        billing = requests.get(f"http://127.0.0.1:{billing_port}/customers/nobody", timeout=10,
                               headers={"Authorization": f"Bearer {found['BILLING_API_TOKEN']}"})
        assert billing.status_code == 404
        assert found["BILLING_WEBHOOK_SECRET"].startswith("whsec_")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
