"""`integration demo`: the README's first command."""
import re
import signal
import subprocess

import requests

from tests.e2e_stack import read_until


def test_demo_drives_every_flow_and_says_so(integration_cmd, tmp_path):
    result = subprocess.run([*integration_cmd, "demo"], capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("1. Zuora callout -> billing customer", "2. billing account -> Zuora account",
                 "3. finalized invoice -> Zuora invoice", "4. usage, quantity mode", "5. usage, revenue mode",
                 "failure list is empty"):
        line = next(ln for ln in out.splitlines() if ln.startswith(step))
        assert " ok " in line, line
    assert "ID mappings (5)" in out and "Failures: none" in out
    assert out.rstrip().splitlines()[-1].startswith("all flows OK")
    assert len(re.findall(r"^  (account|invoice|usage) ", out, re.M)) == 5


def test_demo_keep_running_leaves_everything_up(integration_cmd, tmp_path):
    proc = subprocess.Popen([*integration_cmd, "demo", "--keep-running"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)})
    try:
        text = read_until(proc, "Press Ctrl+C", timeout=90)
        service = re.search(r"service\s+(http://127\.0\.0\.1:\d+)\s+\(admin: Authorization: Bearer (\S+)\)", text)
        assert service, text
        url, token = service.groups()
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        mappings = requests.get(f"{url}/admin/mappings", headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert len(mappings.json()["data"]) == 5
        assert re.search(r"Zuora sandbox\s+http://127\.0\.0\.1:\d+\s+\(client \S+ / \S+\)", text)
        assert re.search(r"billing sandbox\s+http://127\.0\.0\.1:\d+\s+\(Bearer \S+; webhook secret whsec_\S+\)", text)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0
