"""`integration check` against both sandboxes: one line per check, the failing setting named,
exit 0 only when all pass, and no secret value in the output."""
from __future__ import annotations

import sqlite3
import subprocess

import pytest

from integration.store.db import Database
from integration.store.migrate import revisions
from integration_sandbox.billing import create_billing_sandbox
from integration_sandbox.server import ServerThread
from integration_sandbox.zuora import create_zuora_sandbox
from tests.e2e_stack import free_port


@pytest.fixture(scope="module")
def sandboxes():
    zuora_app, billing_app = create_zuora_sandbox(), create_billing_sandbox()
    with ServerThread(zuora_app) as zuora, ServerThread(billing_app) as billing:
        yield {"ZUORA_BASE_URL": zuora.url,
               "ZUORA_CLIENT_ID": zuora_app.extensions["zuora_sandbox"].client_id,
               "ZUORA_CLIENT_SECRET": zuora_app.extensions["zuora_sandbox"].client_secret,
               "BILLING_BASE_URL": billing.url,
               "BILLING_API_TOKEN": billing_app.extensions["billing_sandbox"].api_token}


@pytest.fixture
def env(subprocess_env, sandboxes):
    """A deployment that works: the sandboxes' credentials and a migrated store."""
    Database(subprocess_env["DATABASE_URL"]).migrate()
    return {**subprocess_env, **sandboxes}


def run_check(integration_cmd, env) -> tuple[int, list[str]]:
    result = subprocess.run([*integration_cmd, "check"], env=env, capture_output=True, text=True, timeout=60)
    assert result.stderr == ""
    secrets = [env[k] for k in ("ZUORA_CLIENT_SECRET", "BILLING_API_TOKEN", "BILLING_WEBHOOK_SECRET",
                                "ADMIN_TOKEN", "ZUORA_CALLOUT_PASSWORD") if env.get(k)]
    assert not [s for s in secrets if s in result.stdout], "a secret value was printed"
    return result.returncode, result.stdout.splitlines()


def line(lines: list[str], name: str) -> str:
    found = [ln for ln in lines if ln.split(":")[0].split()[-1] == name]
    assert len(found) == 1, lines
    return found[0]


def test_all_good_exits_0_with_one_ok_line_per_check(integration_cmd, env):
    code, lines = run_check(integration_cmd, env)
    assert code == 0, lines
    assert [ln.split(":")[0] for ln in lines[:-1]] == ["ok    configuration", "ok    store", "ok    Zuora",
                                                     "ok    billing"]
    assert lines[-1] == "4 of 4 checks passed"


def test_wrong_zuora_secret_names_the_client_credentials(integration_cmd, env):
    code, lines = run_check(integration_cmd, {**env, "ZUORA_CLIENT_SECRET": "not-the-secret-4d1f"})
    assert code == 1
    assert line(lines, "Zuora") == "FAIL  Zuora: client credentials rejected (ZUORA_CLIENT_ID/ZUORA_CLIENT_SECRET)"
    assert line(lines, "billing").startswith("ok")
    assert lines[-1] == "3 of 4 checks passed"


def test_wrong_billing_token_names_the_token(integration_cmd, env):
    code, lines = run_check(integration_cmd, {**env, "BILLING_API_TOKEN": "not-the-token-8e2a"})
    assert code == 1
    assert line(lines, "billing") == "FAIL  billing: BILLING_API_TOKEN rejected"
    assert line(lines, "Zuora").startswith("ok")


def test_unreachable_urls_name_the_base_url_variables(integration_cmd, env):
    dead = f"http://127.0.0.1:{free_port()}"
    code, lines = run_check(integration_cmd, {**env, "ZUORA_BASE_URL": dead, "BILLING_BASE_URL": dead})
    assert code == 1
    assert line(lines, "Zuora").startswith(f"FAIL  Zuora: no answer from {dead} (ZUORA_BASE_URL)")
    assert line(lines, "billing").startswith(f"FAIL  billing: no answer from {dead} (BILLING_BASE_URL)")


@pytest.mark.parametrize("store", ["missing", "unmigrated"])
def test_a_store_that_is_not_migrated_says_run_migrate_and_is_left_alone(integration_cmd, env, tmp_path, store):
    path = tmp_path / f"{store}.db"
    if store == "unmigrated":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE unrelated (x)")
    code, lines = run_check(integration_cmd, {**env, "DATABASE_URL": f"sqlite:///{path}"})
    assert code == 1
    store_line = line(lines, "store")
    assert store_line.startswith(f"FAIL  store: {path} ") and store_line.endswith("run `integration migrate`")
    if store == "unmigrated":
        assert f"{len(revisions())} pending" in store_line
    else:
        assert not path.exists(), "check must not create the store"
    assert line(lines, "Zuora").startswith("ok") and line(lines, "billing").startswith("ok")


def test_missing_configuration_fails_that_line_and_skips_the_remote_checks(integration_cmd, env):
    code, lines = run_check(integration_cmd, {**env, "ZUORA_CLIENT_SECRET": ""})
    assert code == 1
    assert line(lines, "configuration") == "FAIL  configuration: ZUORA_CLIENT_SECRET is required but not set"
    assert line(lines, "store").startswith("ok")
    assert line(lines, "Zuora").startswith("skip") and line(lines, "billing").startswith("skip")
    assert lines[-1] == "1 of 4 checks passed"
