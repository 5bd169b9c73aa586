"""The billing platform's adapter chosen by ``BILLING_PLATFORM`` (CONTRACT §13): ``togai``, the default.

Config refuses any other value (``lago`` names the next issue), so an unknown platform never reaches here.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from marshmallow import Schema

from integration.billing.port import BillingPlatform
from integration.billing.togai.client import BillingClient
from integration.billing.togai.envelope import BillingEventSchema
from integration.billing.togai.platform import TogaiPlatform
from integration.billing.togai.webhooks import TogaiWebhooks
from integration.billing.webhook import WebhookVerifier
from integration.config import Config


def webhook_verifier(config: Config, clock: Callable[[], float] = time.time) -> WebhookVerifier:
    """What checks the billing webhook's signature (the web needs no API token for it)."""
    _require_known(config)
    return TogaiWebhooks(config.billing_webhook_secret.reveal(), clock)


def billing_platform(config: Config, **client_options: Any) -> BillingPlatform:
    """The process's billing platform: its adapter over a client from the configuration. ``client_options``
    (timeout, max_concurrency, max_attempts…) override the client's budget (``integration check``'s is short)."""
    _require_known(config)
    options: dict[str, Any] = {"timeout": (5, config.http_timeout), **client_options}
    client = BillingClient(config.billing_base_url, config.billing_api_token.reveal(), **options)
    return TogaiPlatform(client)


def webhook_envelope_schema() -> type[Schema]:
    """The webhook envelope ``/openapi.json`` documents for ``POST /webhooks/billing``: the default
    platform's (the document is built once per process, before any configuration is read)."""
    return BillingEventSchema


def _require_known(config: Config) -> None:
    if config.billing_platform != "togai":
        raise ValueError(f"BILLING_PLATFORM={config.billing_platform!r} has no adapter")
