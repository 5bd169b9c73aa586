"""The ID-mapping table: which record on one side is which on the other.

Rows are unique on each side per type, so a second copy of a link can never be recorded; a
writer that meets its own pair again is a no-op, and one that meets a *different* partner for
either side raises ``MappingConflict`` (two records claiming one twin needs a human). Writing an
account link releases every event waiting (``MISSING_MAPPING``) for that account, in the same
transaction.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from integration.domain import work
from integration.domain.errors import SyncError
from integration.domain.kinds import MappingOrigin, ObjectType, values
from integration.domain.times import iso_moment, utcnow
from integration.store import cursors
from integration.store.db import Database
from integration.store.inbox import Inbox
from integration.store.queries import mappings as q
from integration.store.tx import Tx

TYPES = values(ObjectType)
ORIGINS = values(MappingOrigin)


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
    created_at: datetime
    updated_at: datetime
    reversed_at: datetime | None = None  # invoices: when the Zuora twin was undone for a void (CONTRACT §12)
    reversal: str | None = None  # ``cancelled`` (a Draft) or ``reversed`` (a Posted one, into a credit memo)
    credit_memo_id: str | None = None

    def as_json(self) -> dict:
        """The admin API's item shape (CONTRACT §4), and an undone invoice's ``reversal`` (§12)."""
        item = {"type": self.type, "zuora_id": self.zuora_id, "zuora_number": self.zuora_number,
                "billing_id": self.billing_id, "origin": self.origin,
                "created_at": iso_moment(self.created_at), "updated_at": iso_moment(self.updated_at)}
        if self.billing_customer_id is not None:
            item["billing_customer_id"] = self.billing_customer_id
        if self.billing_parent_id is not None:
            item["billing_parent_id"] = self.billing_parent_id
        if self.reversed_at is not None:
            item.update(reversal=self.reversal, reversed_at=iso_moment(self.reversed_at),
                        credit_memo_id=self.credit_memo_id)
        return item


def _row(row: dict[str, Any] | None) -> Mapping | None:
    return Mapping(**row) if row is not None else None


def _find(tx: Tx, type: str, zuora_key: str | None, billing_id: str | None) -> Mapping | None:
    if billing_id is not None:
        return _row(tx.one(q.BY_BILLING_ID, type=type, billing_id=billing_id))
    if zuora_key is not None:
        return _row(tx.one(q.BY_ZUORA_KEY, type=type, key=zuora_key))
    raise ValueError("give zuora_key or billing_id")


def find(db_or_tx: Database | Tx, type: str, *, zuora_key: str | None = None,
         billing_id: str | None = None) -> Mapping | None:
    """The mapping of one record, by its billing ID or by its Zuora ID *or* number (a read of its
    own, or inside the caller's transaction)."""
    if isinstance(db_or_tx, Tx):
        return _find(db_or_tx, type, zuora_key, billing_id)
    with db_or_tx.read() as tx:
        return _find(tx, type, zuora_key, billing_id)


def children(db: Database, type: str, billing_parent_id: str) -> list[Mapping]:
    with db.read() as tx:
        return [Mapping(**row) for row in tx.rows(q.CHILDREN, type=type, parent=billing_parent_id)]


def counts(db: Database) -> dict[str, int]:
    """How many mappings of each type (demo, benchmarks)."""
    with db.read() as tx:
        return {row["type"]: row["n"] for row in tx.rows(q.COUNT_BY_TYPE)}


def link(type: str, *, zuora_id: str, billing_id: str, origin: str, zuora_number: str | None = None,
         billing_customer_id: str | None = None, billing_parent_id: str | None = None,
         inbox: Inbox | None = None) -> Callable[[Tx], None]:
    """A write (for ``Outcome.writes``) that records the pair, or confirms it is already there.

    Correct on any engine, not only with one writer at a time: the insert either lands or meets one
    of the two unique keys, (type, zuora_id) and (type, billing_id); only then are the holders of
    those keys read, and a holder of a different pair is a ``MappingConflict``.
    """
    if type not in TYPES or origin not in ORIGINS:
        raise ValueError(f"bad mapping type/origin {type}/{origin}")

    def write(tx: Tx) -> None:
        now = utcnow()
        pair = {"type": type, "zuora_id": zuora_id, "billing_id": billing_id}
        inserted = tx.one(q.INSERT, **pair, zuora_number=zuora_number, billing_customer_id=billing_customer_id,
                          billing_parent_id=billing_parent_id, origin=origin, now=now)
        if inserted is None:
            rows = tx.rows(q.HOLDERS, **pair)
            for row in rows:
                if row["zuora_id"] != zuora_id or row["billing_id"] != billing_id:
                    raise MappingConflict(
                        f"{type} mapping conflict: Zuora {row['zuora_id']} is linked to billing {row['billing_id']};"
                        f" refusing to link Zuora {zuora_id} to billing {billing_id}")
            tx.run(q.FILL_IN, zuora_number=zuora_number, billing_customer_id=billing_customer_id, now=now,
                   id=rows[0]["id"])
        if type == "account" and inbox is not None:
            inbox.release_waiting(tx, work.BILLING_ACCOUNT.key(billing_id))
            inbox.release_waiting(tx, work.ZUORA_ACCOUNT.key(zuora_id))

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
    with db.read() as tx:
        rows = tx.rows(q.PAGE, type=type, billing_id=billing_id, zuora_key=zuora_id,
                       after=after if after is not None else 0, limit=limit + 1)
    items = [Mapping(**row) for row in rows[:limit]]
    next_cursor = encode_cursor(items[-1].id) if len(rows) > limit else None
    return items, next_cursor
