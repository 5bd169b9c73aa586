"""``integration check``: is this deployment able to work, and if not, which setting is wrong?

``/readyz`` only says the store is ready; a wrong client secret shows up later, as the first
failed sync. ``check`` tries each dependency once, the way the service will use it, and names the
variable to fix: configuration, the store (reachable, writable, migrated), a Zuora token, and the
billing API answering with its token. Nothing here prints a secret value; every line is scrubbed
of the configured secrets all the same.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

import click

from integration.billing.factory import billing_platform
from integration.config import (
    Config,
    ConfigError,
    database_path,
    load_config,
    load_database_url,
)
from integration.domain.errors import (
    AuthFailed,
    BillingRejected,
    SyncError,
    TransientError,
)
from integration.store.db import Database, StoreUnavailable
from integration.store.engine import display_url
from integration.zuora.client import ZuoraClient

PROBE_CUSTOMER_ID = "integration-check"
"""A customer ID looked up to see the billing API answer; absent (404) is as good as present."""

# One quick retry, not the flows' minute of patience: an operator is waiting for the answer.
class _Budget(TypedDict):
    timeout: tuple[float, float]
    max_attempts: int
    max_retry_seconds: float


_CLIENT_BUDGET: _Budget = {"timeout": (5, 10), "max_attempts": 2, "max_retry_seconds": 5.0}


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str
    skipped: bool = False

    def line(self) -> str:
        mark = "ok  " if self.ok else ("skip" if self.skipped else "FAIL")
        return f"{mark}  {self.name}: {self.detail}"


def run_checks(environ: Mapping[str, str]) -> tuple[list[Result], list[str]]:
    """Every check's result, in order, and the secret values to scrub from what is shown."""
    try:
        config: Config | None = load_config(environ)
        results = [Result("configuration", True, "every variable is set and well-formed")]
    except ConfigError as exc:
        config = None
        problems = "; ".join(f"{name} {why}" for name, why in exc.problems.items())
        results = [Result("configuration", False, problems)]
    results.append(check_store(environ))
    if config is None:
        results += [Result(name, False, "not tried (fix the configuration first)", skipped=True)
                    for name in ("Zuora", "billing")]
        return results, []
    results += [check_zuora(config), check_billing(config)]
    return results, config.secrets()


def check_store(environ: Mapping[str, str]) -> Result:
    """The store exists, takes a write lock and has every migration (never creates it)."""
    try:
        url = load_database_url(environ)
    except ConfigError as exc:
        return Result("store", False, "; ".join(f"{n} {why}" for n, why in exc.problems.items()))
    path = database_path(url)
    if path is None:
        path = display_url(url)  # PostgreSQL: shown without its password
    elif not os.path.isfile(path):
        return Result("store", False, f"{path} does not exist (DATABASE_URL); run `integration migrate`")
    db = Database(url, busy_timeout=5)
    try:
        pending = db.pending_migrations()
        with db.transaction():  # proves the write lock can be taken: webhooks need it for every 200
            pass
    except (OSError, StoreUnavailable) as exc:
        return Result("store", False, f"cannot use {path} (DATABASE_URL): {exc}")
    finally:
        db.close()
    if pending:
        return Result("store", False, f"{path} is not migrated ({len(pending)} pending: {', '.join(pending)}); "
                                      "run `integration migrate`")
    return Result("store", True, f"{path} is reachable, writable and migrated")


def check_zuora(config: Config) -> Result:
    """A token can be fetched with the client credentials (ZUORA_ENTITY_ID sent when set)."""
    base = config.zuora_base_url
    client = ZuoraClient(base, config.zuora_client_id, config.zuora_client_secret.reveal(),
                         entity_id=config.zuora_entity_id, max_concurrency=1, **_CLIENT_BUDGET)
    try:
        client.authenticate()
    except AuthFailed:
        return Result("Zuora", False, "client credentials rejected (ZUORA_CLIENT_ID/ZUORA_CLIENT_SECRET)")
    except TransientError as exc:
        return Result("Zuora", False, f"no answer from {base} (ZUORA_BASE_URL): {exc.message}")
    except SyncError as exc:
        return Result("Zuora", False, f"{base} does not answer like Zuora (ZUORA_BASE_URL?): {exc.message}")
    return Result("Zuora", True, f"token fetched from {base}/oauth/token")


def check_billing(config: Config) -> Result:
    """The billing API answers an authenticated read (a customer look-up) with the token."""
    base = config.billing_base_url
    platform = billing_platform(config, max_concurrency=1, **_CLIENT_BUDGET)
    try:
        platform.get_customer(PROBE_CUSTOMER_ID)
    except AuthFailed:
        return Result("billing", False, "BILLING_API_TOKEN rejected")
    except BillingRejected as exc:
        if exc.http_status == 403:
            return Result("billing", False, "BILLING_API_TOKEN rejected (HTTP 403: not allowed to read customers)")
        return Result("billing", False, f"{base} refused a customer look-up (BILLING_BASE_URL?): {exc.message}")
    except TransientError as exc:
        return Result("billing", False, f"no answer from {base} (BILLING_BASE_URL): {exc.message}")
    except SyncError as exc:
        return Result("billing", False, f"{base} does not answer like the billing API (BILLING_BASE_URL?): "
                                        f"{exc.message}")
    return Result("billing", True, f"{base} answers with BILLING_API_TOKEN")


@click.command("check")
def check_command() -> None:
    """Check the configuration, the store, a Zuora token and the billing API, one line each.

    Exit 0 only if every check passes. A failing line names the setting to fix; no secret value
    is printed.
    """
    import logging

    from integration.logs import RedactingFilter

    # The clients log each call; the check's own lines already say what happened.
    logging.getLogger("integration").addHandler(logging.NullHandler())
    logging.getLogger("integration").propagate = False
    results, known_secrets = run_checks(os.environ)
    redact = RedactingFilter(known_secrets)._clean
    for result in results:
        click.echo(redact(result.line()))
    passed = sum(result.ok for result in results)
    click.echo(f"{passed} of {len(results)} checks passed")
    sys.exit(0 if passed == len(results) else 1)
