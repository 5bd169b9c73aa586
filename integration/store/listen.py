"""PostgreSQL's wake-up line: one dedicated autocommit connection per worker thread that
``LISTEN``s on the store's channel and counts the notifications it has received.

Reading the count is a non-blocking look at the socket (psycopg's ``notifies(timeout=0)``), so a
worker that checks it every ``poll_interval`` costs the server nothing. A connection that breaks
(a restart, ``pg_terminate_backend``) is reconnected on the next check; while it is down the count
reads ``None`` and the worker falls back to its poll of the due time.
"""
from __future__ import annotations

import contextlib

import psycopg
from psycopg import sql


class Listener:
    def __init__(self, conninfo: str, channel: str):
        self._conninfo = conninfo
        self._channel = channel
        self._conn: psycopg.Connection | None = None
        self._count = 0

    def count(self) -> int | None:
        """Notifications received so far (it moves when new work was announced); None when the
        server cannot be reached right now."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5)
                self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                self._count += 1  # a new connection may have missed notifications: count as news
            for _ in self._conn.notifies(timeout=0):
                self._count += 1
            return self._count
        except psycopg.Error:
            self.close()
            return None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # already broken: closed enough
                conn.close()
