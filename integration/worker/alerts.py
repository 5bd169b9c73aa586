"""The failure-alert digest (CONTRACT §8): a periodic job of the worker.

With ``INTEGRATION_ALERT_WEBHOOK_URL`` set, every ``INTEGRATION_ALERT_INTERVAL_SECONDS`` (a *slot*,
counted from the Unix epoch so every process agrees on it) one process claims the slot in the store
(integration.store.alerts) and POSTs the failures that are new since the last delivered digest as
``{"text": ...}``, the shape Slack and Mattermost incoming webhooks accept. The POST runs on its own
thread, so a slow or dead receiver never holds up a flow; a failed delivery leaves the watermark
where it was and the next slot sends those failures again, with whatever is new.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import requests

from integration.domain.times import utcnow
from integration.services import Services
from integration.store import alerts
from integration.worker.periodic import Periodic, interval_slot, new_worker_id

log = logging.getLogger("integration.alerts")
TIMEOUT = (5, 10)
MESSAGE_MAX = 200


def slot_of(now: datetime, interval: float) -> str:
    """The slot key for ``now``: the start of its interval since the epoch, in UTC."""
    return interval_slot("alert", now, interval)


def render(digest: alerts.Digest, public_url: str | None) -> str:
    """The digest's text: counts by code, the first ten failures, and a console link when known."""
    counts = ", ".join(f"{code} {n}" for code, n in digest.by_code.items())
    lines = [f"{digest.total} new sync failure(s): {counts}"]
    for item in digest.first:
        message = " ".join(item["message"].split())
        if len(message) > MESSAGE_MAX:
            message = message[:MESSAGE_MAX - 1] + "…"
        lines.append(f"• {item['object_type']} {item['object_id']} — {item['code']}: {message}")
    if digest.total > len(digest.first):
        lines.append(f"… and {digest.total - len(digest.first)} more")
    if public_url:
        lines.append(f"Console: {public_url}/console/failures")
    return "\n".join(lines)


@dataclass
class AlertJob:
    """Cheap when called again within a slot (no store access); at most one delivery in flight."""

    services: Services
    clock: Callable[[], datetime] = utcnow
    post: Callable[..., requests.Response] = requests.post
    worker_id: str = field(default_factory=new_worker_id)
    _periodic: Periodic[datetime, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._periodic = Periodic(
            "alert", self.clock, self._slot, lambda slot, now: self.send(slot),
            claim=lambda slot, now: alerts.claim(self.services.db, slot, self.worker_id, now),
            threaded=True, log=log, failed="failure digest could not be prepared")

    def __call__(self) -> None:
        self._periodic()

    def _slot(self, now: datetime) -> str | None:
        if self.services.config.alert_webhook_url is None:
            return None
        return slot_of(now, self.services.config.alert_interval_seconds)

    def wait(self, timeout: float = 30.0) -> None:
        """Until the delivery in flight (if any) has ended (tests)."""
        self._periodic.wait(timeout)

    def send(self, slot: str) -> bool:
        """Build and POST the slot's digest, and record the outcome; True when delivered (or empty)."""
        config = self.services.config
        url = config.alert_webhook_url
        if url is None:  # __call__ only runs configured; a direct call has nowhere to deliver
            raise RuntimeError("INTEGRATION_ALERT_WEBHOOK_URL is not set: no alert webhook to deliver to")
        digest = alerts.digest(self.services.db, slot)
        if digest.total == 0:
            alerts.record(self.services.db, slot, failures=0, delivered_at=self.clock())
            return True
        try:
            response = self.post(url.reveal(), json={"text": render(digest, config.public_url)},
                                 timeout=TIMEOUT)
            ok, problem = 200 <= response.status_code < 300, f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            ok, problem = False, type(exc).__name__  # never the URL: it is a credential
        if ok:
            alerts.record(self.services.db, slot, failures=digest.total, delivered_at=self.clock())
            log.info("failure digest sent", extra={"slot": slot, "failures": digest.total})
        else:
            alerts.record(self.services.db, slot, failures=digest.total, delivered_at=None, error=problem)
            log.warning("failure digest not delivered; it goes out with the next slot",
                        extra={"slot": slot, "failures": digest.total, "error": problem})
        return ok
