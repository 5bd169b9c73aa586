"""The limit on guessing ``ADMIN_TOKEN``: the console's sign-in and ``/admin/*`` bearer tokens.

The rule (docs/console.md, "Security model"):

- **Count first, check after, atomically.** Every attempt is counted in the store before its token is
  looked at, by one statement that returns the attempt's number in its window
  (``integration.store.sign_ins``). Only attempts within the limit get a real check; the rest are
  refused unread. So 40 parallel guesses from one address get at most ``attempts`` checks.
- **A blocked bucket refuses every attempt, the right token too.** Otherwise the block would not stop
  a guesser: a right guess would still be answered as right. The limit exists to stop guessing, so it
  must not be a side door.
- **No one is blocked for someone else's failures.** Buckets are per client address (the TCP peer, or
  the address a trusted proxy forwards), never global; and a browser that has signed in before carries
  a signed *known-device* cookie (``console_session.KnownDevices``) whose attempts count in a bucket of
  its own, so an attacker who floods an address — or the one address every client shares behind a
  proxy that is not trusted — cannot lock out operators who have signed in from their browsers before.
  Such a cookie is only issued with the right token, and it dies with the token and the session key.
- **Behind a proxy, say so.** A request that carries ``X-Forwarded-For`` while
  ``INTEGRATION_TRUST_PROXY`` is off is logged (once per process): every client behind that proxy then
  shares the proxy's address, and so one bucket.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import request

from integration.domain.times import utcnow
from integration.store import sign_ins
from integration.store.db import Database

log = logging.getLogger("integration.web")

ATTEMPTS = 5
WINDOW_SECONDS = 300.0


@dataclass(frozen=True)
class Ticket:
    """One counted attempt: ``wait`` is 0 when its token may be checked, else the whole seconds (at least
    1) until its bucket may try again."""

    bucket: str
    attempt: sign_ins.Attempt
    wait: int


class SignInLimiter:
    """At most ``attempts`` token checks per bucket per window of ``window`` seconds, counted in the store:
    across every web process and host, not per process."""

    def __init__(self, db: Database, attempts: int = ATTEMPTS, window: float = WINDOW_SECONDS,
                 clock: Callable[[], datetime] = utcnow):
        self.db, self.attempts, self.window, self.clock = db, attempts, timedelta(seconds=window), clock
        self.warned_untrusted_proxy = False

    def client_address(self, trust_proxy: bool) -> str:
        """The client's address as this request shows it (``ProxyFix`` has already applied the forwarded
        one when the proxy is trusted); warns once per process about a proxy that is not trusted."""
        if not trust_proxy and not self.warned_untrusted_proxy and "X-Forwarded-For" in request.headers:
            self.warned_untrusted_proxy = True
            log.warning("a request came through a proxy (X-Forwarded-For) but INTEGRATION_TRUST_PROXY is off: "
                        "every client behind it shares the proxy's address for the sign-in limits; set "
                        "INTEGRATION_TRUST_PROXY=true if you run that proxy", extra={"client": request.remote_addr})
        return request.remote_addr or "unknown"

    def attempt(self, bucket: str) -> Ticket:
        """Count an attempt of ``bucket`` before its token is looked at; check the token only when the
        ticket's ``wait`` is 0."""
        now = self.clock()
        counted = sign_ins.count_attempt(self.db, bucket, now, self.window)
        wait = 0
        if counted.number > self.attempts:
            wait = max(math.ceil((counted.window_start + self.window - now).total_seconds()), 1)
        return Ticket(bucket=bucket, attempt=counted, wait=wait)

    def succeeded(self, ticket: Ticket) -> None:
        """The right token: its attempt does not count (only wrong ones do)."""
        sign_ins.refund(self.db, ticket.bucket, ticket.attempt)


def address_bucket(address: str) -> str:
    """The bucket of a client address: shared by the console's sign-in and ``/admin/*``, since both guess
    the same token."""
    return f"address:{address}"
