"""The bare claim loop that ``bench_claim.py`` measures the worker against (a process of its own).

    python bench/bare_claim.py DATABASE_URL

It claims events from the very ``events`` table the service uses, with nothing but the driver:
on PostgreSQL ``SELECT … ORDER BY next_attempt_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED`` and
an ``UPDATE`` to running in one transaction, then an ``UPDATE`` to done in a second one; on SQLite
``BEGIN IMMEDIATE`` and one ``UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING id``, then the same
``UPDATE`` to done. Two transactions per event, as the worker's claim and finish are. No attempts
rows, no lease heartbeat, no log line, no metrics, no handler: the floor of what one claim costs.
It prints ``ready`` once connected, polls every 10 ms while there is nothing to claim, and runs
until it is sent SIGTERM.
"""
from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta, timezone

STORED = "%Y-%m-%dT%H:%M:%S.%fZ"


def stamp(delta: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=delta)).strftime(STORED)


def postgres_loop(url: str, owner: str) -> None:
    import psycopg

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from integration.store.engine import libpq_url

    with psycopg.connect(libpq_url(url)) as conn:
        print("ready", flush=True)
        while True:
            now = stamp()
            with conn.transaction():
                row = conn.execute(
                    "SELECT id FROM events WHERE status = 'pending' AND next_attempt_at <= %s"
                    " ORDER BY next_attempt_at, created_at LIMIT 1 FOR UPDATE SKIP LOCKED", (now,)).fetchone()
                if row is not None:
                    conn.execute("UPDATE events SET status = 'running', attempts = attempts + 1, lease_owner = %s,"
                                 " lease_expires_at = %s, updated_at = %s WHERE id = %s",
                                 (owner, stamp(60), now, row[0]))
            if row is None:
                time.sleep(0.01)
                continue
            with conn.transaction():
                conn.execute("UPDATE events SET status = 'done', lease_owner = NULL, lease_expires_at = NULL,"
                             " updated_at = %s WHERE id = %s", (stamp(), row[0]))


def sqlite_loop(url: str, owner: str) -> None:
    import sqlite3

    conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    print("ready", flush=True)
    while True:
        now = stamp()
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            "UPDATE events SET status = 'running', attempts = attempts + 1, lease_owner = ?, lease_expires_at = ?,"
            " updated_at = ? WHERE id = (SELECT id FROM events WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, created_at LIMIT 1) RETURNING id", (owner, stamp(60), now, now)).fetchone()
        conn.execute("COMMIT")
        if row is None:
            time.sleep(0.01)
            continue
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE events SET status = 'done', lease_owner = NULL, lease_expires_at = NULL, updated_at = ?"
                     " WHERE id = ?", (stamp(), row[0]))
        conn.execute("COMMIT")


if __name__ == "__main__":
    target = sys.argv[1]
    (sqlite_loop if target.startswith("sqlite") else postgres_loop)(target, f"bare-{os.getpid()}")
