"""``integration backfill``'s scratch index: both tenants' accounts, reduced to what planning needs, in a
temporary SQLite file on disk (not the store: it is rebuilt every run, needs no migration, and is
deleted afterwards). Its page cache is bounded, so memory stays flat however many accounts there are;
every question the planner asks is one indexed query. ``integration.flows.backfill`` explains the plan.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator

_SCHEMA = """
PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4096;
CREATE TABLE zuora (id TEXT PRIMARY KEY, number TEXT, link TEXT, email TEXT);
CREATE TABLE billing (id TEXT PRIMARY KEY, zuora_ref TEXT, email TEXT, paired INTEGER DEFAULT 0);
CREATE TABLE plan (n INTEGER PRIMARY KEY, action TEXT, reason TEXT, zuora_id TEXT, zuora_number TEXT,
                   billing_id TEXT, invoice_id TEXT);
CREATE INDEX zuora_number ON zuora (number);
CREATE INDEX zuora_link ON zuora (link);
CREATE INDEX zuora_email ON zuora (email);
CREATE INDEX billing_ref ON billing (zuora_ref);
CREATE INDEX billing_email ON billing (email);
"""

Row = tuple[str, str | None, str | None, str | None]


class ScratchIndex:
    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(prefix="integration-backfill-", suffix=".sqlite")
        os.close(handle)
        self.conn = sqlite3.connect(self.path)
        self.conn.executescript(_SCHEMA)

    def close(self) -> None:
        self.conn.close()
        os.unlink(self.path)

    def __enter__(self) -> ScratchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _value(self, sql: str, *args: object) -> object:
        row = self.conn.execute(sql, args).fetchone()
        return row[0] if row else None

    def _count(self, sql: str, *args: object) -> int:
        return int(self.conn.execute(sql, args).fetchone()[0])

    # -- filling ---------------------------------------------------------------------------------------

    def add_zuora(self, rows: Iterable[Row], tick: Callable[[], None] = lambda: None) -> None:
        """``(id, number, link field, email)`` per Zuora account."""
        for row in rows:
            self.conn.execute("INSERT OR REPLACE INTO zuora VALUES (?, ?, ?, ?)", row)
            tick()
        self.conn.commit()

    def add_billing(self, rows: Iterable[tuple[str, str | None, str | None]],
                    tick: Callable[[], None] = lambda: None) -> None:
        """``(id, Zuora account its settings name, email)`` per billing account."""
        for row in rows:
            self.conn.execute("INSERT OR REPLACE INTO billing (id, zuora_ref, email) VALUES (?, ?, ?)", row)
            tick()
        self.conn.commit()

    # -- questions -------------------------------------------------------------------------------------

    def zuora_accounts(self) -> Iterator[Row]:
        yield from self.conn.cursor().execute("SELECT id, number, link, email FROM zuora ORDER BY id")

    def unpaired_billing(self) -> Iterator[tuple[str, str | None]]:
        yield from self.conn.cursor().execute("SELECT id, zuora_ref FROM billing WHERE paired = 0 ORDER BY id")

    def mark_paired(self, billing_id: str) -> None:
        self.conn.execute("UPDATE billing SET paired = 1 WHERE id = ?", (billing_id,))

    def billing_exists(self, billing_id: str) -> bool:
        return self._value("SELECT 1 FROM billing WHERE id = ?", billing_id) is not None

    def billing_naming(self, zuora_id: str, number: str) -> list[str]:
        """Up to two billing accounts whose settings name this Zuora account."""
        return [r[0] for r in self.conn.execute("SELECT id FROM billing WHERE zuora_ref IN (?, ?) LIMIT 2",
                                                (zuora_id, number))]

    def billing_ref(self, billing_id: str) -> str | None:
        value = self._value("SELECT zuora_ref FROM billing WHERE id = ?", billing_id)
        return str(value) if value else None

    def link_claims(self, billing_id: str) -> int:
        return self._count("SELECT COUNT(*) FROM zuora WHERE link = ?", billing_id)

    def other_claimer(self, billing_id: str, zuora_id: str) -> str | None:
        value = self._value("SELECT id FROM zuora WHERE link = ? AND id <> ?", billing_id, zuora_id)
        return str(value) if value else None

    def zuora_number(self, zuora_id: str) -> str:
        return str(self._value("SELECT number FROM zuora WHERE id = ?", zuora_id) or "")

    def zuora_exists(self, key: str) -> bool:
        return self._value("SELECT 1 FROM zuora WHERE id = ? OR number = ?", key, key) is not None

    def zuora_with_email(self, email: str) -> int:
        return self._count("SELECT COUNT(*) FROM zuora WHERE email = ?", email)

    def free_billing_with_email(self, email: str) -> list[str]:
        """Up to two billing accounts with this email that nothing names or pairs yet."""
        return [r[0] for r in self.conn.execute(
            "SELECT b.id FROM billing b WHERE b.email = ? AND b.zuora_ref IS NULL AND b.paired = 0"
            " AND NOT EXISTS (SELECT 1 FROM zuora z WHERE z.link = b.id OR z.id = b.id) LIMIT 2", (email,))]

    # -- the plan to apply -----------------------------------------------------------------------------

    def add_plan(self, row: tuple[str, str, str, str, str, str]) -> None:
        """``(action, reason, zuora_id, zuora_number, billing_id, invoice_id)``."""
        self.conn.execute("INSERT INTO plan (action, reason, zuora_id, zuora_number, billing_id, invoice_id)"
                          " VALUES (?, ?, ?, ?, ?, ?)", row)

    def plan_count(self) -> int:
        self.conn.commit()
        return self._count("SELECT COUNT(*) FROM plan")

    def plan_rows(self) -> Iterator[tuple[str, str, str, str, str, str]]:
        yield from self.conn.cursor().execute(
            "SELECT action, reason, zuora_id, zuora_number, billing_id, invoice_id FROM plan ORDER BY n")

    def commit(self) -> None:
        self.conn.commit()
