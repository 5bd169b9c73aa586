"""The ID-mapping table: which record on one side is which on the other.

Rows are unique on each side per type, so a second copy of a link can never be recorded; a
writer that meets its own pair again is a no-op, and one that meets a *different* partner for
either side raises ``MappingConflict`` (two records claiming one twin needs a human). Writing an
account link releases every event waiting (``MISSING_MAPPING``) for that account, in the same
transaction.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Callable

from integration.domain.errors import SyncError
from integration.store import cursors
from integration.store.db import Database, iso, to_db_time, utcnow
from integration.store.inbox import Inbox

TYPES = ("account", "invoice", "usage")
ORIGINS = ("zuora", "billing", "linked")


class MappingConflict(SyncError):
    """One side is already linked to a different record on the other side."""


@dataclass(frozen=True)
class Mapping:
    id: int
    type: str
    zuora_id: str
    zuora_number: str | None
    billing_id: str
    billing_customer_id: str | None
    billing_parent_id: str | None
    origin: str
    created_at: str
    updated_at: str

    def as_json(self) -> dict:
        """The admin API's item shape (CONTRACT §4)."""
        item = {"type": self.type, "zuora_id": self.zuora_id, "zuora_number": self.zuora_number,
                "billing_id": self.billing_id, "origin": self.origin,
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at)}
        if self.billing_customer_id is not None:
            item["billing_customer_id"] = self.billing_customer_id
        if self.billing_parent_id is not None:
            item["billing_parent_id"] = self.billing_parent_id
        return item


def _row(row: sqlite3.Row | None) -> Mapping | None:
    return Mapping(**dict(row)) if row is not None else None


def find(db_or_conn, type: str, *, zuora_key: str | None = None, billing_id: str | None = None) -> Mapping | None:
    """The mapping of one record, by its billing ID or by its Zuora ID *or* number."""
    conn = db_or_conn.connection() if isinstance(db_or_conn, Database) else db_or_conn
    if billing_id is not None:
        row = conn.execute("SELECT * FROM id_mappings WHERE type = ? AND billing_id = ?", (type, billing_id)).fetchone()
    elif zuora_key is not None:
        row = conn.execute("SELECT * FROM id_mappings WHERE type = ? AND (zuora_id = ? OR zuora_number = ?)"
                           " ORDER BY zuora_id = ? DESC LIMIT 1", (type, zuora_key, zuora_key, zuora_key)).fetchone()
    else:
        raise ValueError("give zuora_key or billing_id")
    return _row(row)


def children(db: Database, type: str, billing_parent_id: str) -> list[Mapping]:
    rows = db.query("SELECT * FROM id_mappings WHERE type = ? AND billing_parent_id = ? ORDER BY id",
                    (type, billing_parent_id))
    return [Mapping(**dict(r)) for r in rows]


def link(type: str, *, zuora_id: str, billing_id: str, origin: str, zuora_number: str | None = None,
         billing_customer_id: str | None = None, billing_parent_id: str | None = None,
         inbox: Inbox | None = None) -> Callable[[sqlite3.Connection], None]:
    """A write (for ``Outcome.writes``) that records the pair, or confirms it is already there."""
    if type not in TYPES or origin not in ORIGINS:
        raise ValueError(f"bad mapping type/origin {type}/{origin}")

    def write(conn: sqlite3.Connection) -> None:
        now = to_db_time(utcnow())
        rows = conn.execute("SELECT * FROM id_mappings WHERE type = ? AND (zuora_id = ? OR billing_id = ?)",
                            (type, zuora_id, billing_id)).fetchall()
        for row in rows:
            if row["zuora_id"] != zuora_id or row["billing_id"] != billing_id:
                raise MappingConflict(
                    f"{type} mapping conflict: Zuora {row['zuora_id']} is linked to billing {row['billing_id']};"
                    f" refusing to link Zuora {zuora_id} to billing {billing_id}")
        if rows:
            conn.execute("UPDATE id_mappings SET zuora_number = COALESCE(?, zuora_number),"
                         " billing_customer_id = COALESCE(?, billing_customer_id), updated_at = ? WHERE id = ?",
                         (zuora_number, billing_customer_id, now, rows[0]["id"]))
        else:
            conn.execute(
                "INSERT INTO id_mappings (type, zuora_id, zuora_number, billing_id, billing_customer_id,"
                " billing_parent_id, origin, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (type, zuora_id, zuora_number, billing_id, billing_customer_id, billing_parent_id, origin, now, now))
        if type == "account" and inbox is not None:
            inbox.release_waiting(conn, f"billing-account:{billing_id}")
            inbox.release_waiting(conn, f"zuora-account:{zuora_id}")

    return write


# -- admin listing ---------------------------------------------------------------------------------

def encode_cursor(row_id: int) -> str:
    return cursors.encode("m", row_id)


def decode_cursor(cursor: str) -> int:
    """The row ID behind an opaque cursor; ValueError when it is not one of ours."""
    return cursors.decode("m", cursor)


def page(db: Database, *, type: str | None = None, zuora_id: str | None = None, billing_id: str | None = None,
         limit: int = 100, after: int | None = None) -> tuple[list[Mapping], str | None]:
    """One page of mappings in creation order, and the cursor of the next page (None at the end)."""
    where, params = ["1 = 1"], []
    for column, value in (("type", type), ("billing_id", billing_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if zuora_id is not None:
        where.append("(zuora_id = ? OR zuora_number = ?)")
        params += [zuora_id, zuora_id]
    if after is not None:
        where.append("id > ?")
        params.append(after)
    rows = db.query(f"SELECT * FROM id_mappings WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
                    (*params, limit + 1))
    items = [Mapping(**dict(r)) for r in rows[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return items, next_cursor
