import subprocess

import pytest

from integration.config import ConfigError, Secret, load_config

SECRETS = {
    "ZUORA_CLIENT_SECRET": "zuora-secret-value-1234",
    "BILLING_API_TOKEN": "billing-token-value-5678",
    "ADMIN_TOKEN": "admin-token-value-9012-3456",
    "ZUORA_CALLOUT_PASSWORD": "callout-password-3456",
    "BILLING_WEBHOOK_SECRET": "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTc4OTA=",
}
VALID = {
    "ZUORA_BASE_URL": "https://rest.apisandbox.zuora.com",
    "ZUORA_CLIENT_ID": "client-id",
    "BILLING_BASE_URL": "https://sandbox-api.togai.com",
    "ZUORA_CALLOUT_USERNAME": "zuora",
    **SECRETS,
}


def test_valid_environment_loads_with_defaults():
    config = load_config(VALID)
    assert config.database_url == "sqlite:///integration.db"
    assert config.zuora_link_field == "BillingAccountId__c"
    assert config.zuora_invoice_link_field == "BillingInvoiceId__c"
    assert config.zuora_invoice_status == "Posted"
    assert config.zuora_callout_hmac_header == "X-Zuora-Signature"
    assert config.zuora_callout_hmac_algorithm == "SHA-256"
    assert config.zuora_callout_hmac_format == "BASE64"
    assert config.zuora_client_secret.reveal() == SECRETS["ZUORA_CLIENT_SECRET"]
    assert (config.zuora_max_concurrency, config.http_timeout, config.backoff_seconds) == (40, 30.0, 5.0)


def test_every_missing_required_variable_is_named_in_one_error():
    with pytest.raises(ConfigError) as caught:
        load_config({})
    for name in ("ZUORA_BASE_URL", "ZUORA_CLIENT_ID", "ZUORA_CLIENT_SECRET", "BILLING_BASE_URL",
                 "BILLING_API_TOKEN", "BILLING_WEBHOOK_SECRET", "ADMIN_TOKEN"):
        assert name in caught.value.problems
        assert name in str(caught.value)


@pytest.mark.parametrize("name,value", [
    ("ZUORA_BASE_URL", "not a url"),
    ("BILLING_BASE_URL", "ftp://billing"),
    ("BILLING_WEBHOOK_SECRET", "plain-secret"),
    ("BILLING_WEBHOOK_SECRET", "whsec_!!!notbase64"),
    ("ZUORA_CALLOUT_HMAC_ALGORITHM", "MD5"),
    ("ZUORA_CALLOUT_HMAC_FORMAT", "binary"),
    ("ZUORA_INVOICE_STATUS", "Sent"),
    ("ZUORA_LINK_FIELD", "BillingAccountId"),
    ("ZUORA_INVOICE_LINK_FIELD", "Billing Invoice"),
    ("DATABASE_URL", "mysql://db/integration"),
    ("DATABASE_URL", "postgresql://"),
    ("INTEGRATION_RETRY_CRON", "every noon"),
    ("INTEGRATION_MAX_ATTEMPTS", "zero"),
    ("ZUORA_CALLOUT_AUTH", "maybe"),
    ("ZUORA_MAX_CONCURRENCY", "0"),
    ("INTEGRATION_HTTP_TIMEOUT", "forever"),
    ("INTEGRATION_BACKOFF_SECONDS", "-1"),
])
def test_each_malformed_variable_is_named(name, value):
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID, name: value})
    assert list(caught.value.problems) == [name]


def test_several_problems_are_reported_together():
    env = {**VALID, "ZUORA_INVOICE_STATUS": "Sent", "ZUORA_CALLOUT_HMAC_FORMAT": "binary"}
    del env["ADMIN_TOKEN"]
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert set(caught.value.problems) == {"ZUORA_INVOICE_STATUS", "ZUORA_CALLOUT_HMAC_FORMAT", "ADMIN_TOKEN"}


@pytest.mark.parametrize("token", [
    "short-Token-1",                       # under 24 characters
    "correcthorsebatterystaplexyz",        # one kind of character
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaa1",       # two kinds, but two different characters
    "abcabcabcabc123123123123abc",         # three kinds, seven different characters
    "a token with spaces in it 12345",     # not one header-safe word
    "tökén-with-nön-ascii-characters-1",   # not ASCII
])
def test_a_weak_admin_token_is_refused_at_start_with_how_to_make_one(token):
    with pytest.raises(ConfigError) as caught:
        load_config({**VALID, "ADMIN_TOKEN": token})
    assert list(caught.value.problems) == ["ADMIN_TOKEN"]
    message = str(caught.value)
    assert "secrets.token_urlsafe(32)" in message and token not in message


@pytest.mark.parametrize("token", [
    "admin-token-value-9012-3456",
    "0123456789abcdef0123456789abcdef",           # openssl rand -hex 16
    "6f1c2f0e-3b8e-4f44-9d3e-7f5e3c1a2b9d",       # a UUID
    "tA9_-x2QmZ0rVbL8kW3nYp5sHc7dJf1gE4uRiOo",    # secrets.token_urlsafe(32)
])
def test_a_generated_admin_token_passes(token):
    assert load_config({**VALID, "ADMIN_TOKEN": token}).admin_token.reveal() == token


def test_serve_and_check_refuse_a_weak_admin_token_naming_it(integration_cmd):
    for command, code in (("serve", 2), ("worker", 2), ("check", 1)):  # check reports it as its failed line
        env = {"PATH": "/usr/bin:/bin", **VALID, "ADMIN_TOKEN": "changeme"}
        result = subprocess.run([*integration_cmd, command], env=env, capture_output=True, text=True, timeout=60)
        said = result.stdout + result.stderr
        assert result.returncode == code, said
        assert "ADMIN_TOKEN" in said and "secrets.token_urlsafe(32)" in said and "changeme" not in said


def test_callout_authentication_is_required_unless_explicitly_none():
    env = {k: v for k, v in VALID.items() if not k.startswith("ZUORA_CALLOUT")}
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert "ZUORA_CALLOUT_USERNAME" in caught.value.problems
    assert "ZUORA_CALLOUT_AUTH=none" in caught.value.problems["ZUORA_CALLOUT_USERNAME"]
    assert load_config({**env, "ZUORA_CALLOUT_AUTH": "none"}).zuora_callout_auth_none
    assert load_config({**env, "ZUORA_CALLOUT_HMAC_SECRET": "hmac-key"}).zuora_callout_hmac_secret


def test_basic_auth_needs_both_halves():
    env = {**VALID}
    del env["ZUORA_CALLOUT_PASSWORD"]
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert "ZUORA_CALLOUT_PASSWORD" in caught.value.problems


def test_secrets_never_appear_in_repr_or_str():
    config = load_config({**VALID, "ZUORA_CALLOUT_HMAC_SECRET": "hmac-secret-value-7777"})
    text = repr(config) + str(config) + repr(Secret("x-secret"))
    for secret in [*SECRETS.values(), "hmac-secret-value-7777"]:
        assert secret not in text
    assert "********" in text
    assert set(config.secrets()) >= set(SECRETS.values())


def test_command_with_missing_configuration_exits_nonzero_naming_each_variable(integration_cmd):
    env = {"PATH": "/usr/bin:/bin", "BILLING_API_TOKEN": "billing-token-value-5678"}
    result = subprocess.run([*integration_cmd, "worker"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    for name in ("ZUORA_BASE_URL", "ZUORA_CLIENT_ID", "ZUORA_CLIENT_SECRET", "BILLING_BASE_URL",
                 "BILLING_WEBHOOK_SECRET", "ADMIN_TOKEN"):
        assert name in result.stderr
    assert "BILLING_API_TOKEN" not in result.stderr  # it is set
    assert "billing-token-value-5678" not in result.stdout + result.stderr


def test_malformed_configuration_output_never_echoes_secret_values(integration_cmd):
    env = {"PATH": "/usr/bin:/bin", **VALID, "BILLING_WEBHOOK_SECRET": "not-a-whsec-secret-4242",
           "ZUORA_BASE_URL": "nope"}
    result = subprocess.run([*integration_cmd, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "BILLING_WEBHOOK_SECRET" in result.stderr and "ZUORA_BASE_URL" in result.stderr
    for secret in [*SECRETS.values(), "not-a-whsec-secret-4242"]:
        assert secret not in result.stdout + result.stderr


def test_zuora_concurrency_setting_reaches_the_client():
    from integration.services import Services
    services = Services.from_config(load_config({**VALID, "ZUORA_MAX_CONCURRENCY": "7"}))
    assert services.zuora._slots._value == 7  # the client's semaphore of calls in flight


def test_the_invoice_link_field_can_be_named():
    assert load_config({**VALID, "ZUORA_INVOICE_LINK_FIELD": "SourceInvoice__c"}).zuora_invoice_link_field == \
        "SourceInvoice__c"
