"""The objects one process shares: settings, store, inbox, and (lazily) the API clients."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from integration.billing.port import BillingPlatform
from integration.config import Config
from integration.domain.backoff import Backoff
from integration.store.db import Database
from integration.store.inbox import Inbox

if TYPE_CHECKING:  # the client (and requests) load when a process first calls Zuora
    from integration.zuora.client import ZuoraClient


@dataclass
class Services:
    config: Config
    db: Database
    inbox: Inbox

    @classmethod
    def from_config(cls, config: Config, **inbox_options) -> Services:
        db = Database(config.database_url)
        inbox = Inbox(db, lease_seconds=config.lease_seconds, max_attempts=config.max_attempts,
                      backoff=Backoff(base_seconds=config.backoff_seconds), **inbox_options)
        return cls(config=config, db=db, inbox=inbox)

    @cached_property
    def zuora(self) -> ZuoraClient:
        from integration.zuora.client import ZuoraClient
        c = self.config
        return ZuoraClient(c.zuora_base_url, c.zuora_client_id, c.zuora_client_secret.reveal(),
                           entity_id=c.zuora_entity_id, timeout=(5, c.http_timeout),
                           max_concurrency=c.zuora_max_concurrency)

    @cached_property
    def billing(self) -> BillingPlatform:
        from integration.billing.factory import billing_platform
        return billing_platform(self.config)
