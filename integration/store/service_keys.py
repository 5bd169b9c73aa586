"""Keys the service generates for itself once and keeps in the store (CONTRACT §2).

WHY in the store: the console's session key must be the same in every web process on every host (a
cookie signed by one is read by another), must survive restarts (or every deploy signs everyone out),
and must never be derived from ``ADMIN_TOKEN`` — a key derived from the token turns every signed cookie
the login page hands out into an offline oracle for guessing the token. A random key kept where every
process already looks is all three. Processes that start together race to make it: each inserts its own
candidate with ``ON CONFLICT DO NOTHING`` and reads back whatever landed, so the database's primary key
picks one winner on either engine.
"""
from __future__ import annotations

import secrets

from integration.domain.times import utcnow
from integration.store.db import Database
from integration.store.queries import service_keys as q

SESSION_KEY = "console_session_key"
"""The name of the console's session and CSRF signing key (used when INTEGRATION_SECRET_KEY is unset)."""


def get_or_create(db: Database, name: str, nbytes: int = 32) -> str:
    """The key called ``name``: the one already kept, or ``nbytes`` random bytes (hex) kept now.

    One transaction: the insert either lands or meets the row another process committed (on
    PostgreSQL it waits for a concurrent insert to commit, then does nothing), and the read that
    follows sees the row that won."""
    with db.transaction() as tx:
        tx.run(q.INSERT_IF_ABSENT, name=name, value=secrets.token_hex(nbytes), now=utcnow())
        value = tx.scalar(q.VALUE, name=name)
    if not isinstance(value, str) or not value:
        raise RuntimeError(f"the store kept no value for the key {name!r}")  # a bug: the insert or the read
    return value
