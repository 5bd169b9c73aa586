"""Planning ``integration backfill`` (CONTRACT §9): what to do with every account of a tenant pair that
already has data.

Memory stays flat with the number of accounts. Both tenants are *streamed* (Zuora Object Query and
Togai's ``GET /accounts``, one page at a time) into a scratch SQLite file on disk (``ScratchIndex``,
``tempfile``, deleted afterwards) that holds only what classification needs per account: IDs, the
link (Zuora's ``ZUORA_LINK_FIELD``; the billing account's ``zuora`` settings), and the bill-to email.
Classification then walks that index with a cursor and answers each question ("does billing account
X exist?", "how many Zuora accounts claim it?") with an indexed query, so the process never holds
either tenant, let alone both; SQLite's page cache is bounded. The scratch file is not the store:
it is rebuilt every run (the plan must reflect the tenants *now*), needs no migration, and a run that
dies leaves nothing behind but a temporary file.

Actions (one ``PlanItem`` per Zuora account, and one per billing account not already in a Zuora
account's item): ``linked`` (a mapping row exists), ``link`` (the two point at each other, or the
billing account's ID is the Zuora ID), ``create_in_billing``, ``create_in_zuora``, ``conflict`` (a
human must decide), ``candidate`` (``match_email``: one unlinked account on each side with the same
bill-to email). ``integration.flows.backfill_apply`` queues them.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from integration.domain.account_fields import SETTINGS_NAMESPACE
from integration.store import mappings
from integration.store.db import Database

ACTIONS = ("linked", "link", "create_in_billing", "create_in_zuora", "conflict", "candidate", "push_invoice")
SIDES = ("zuora", "billing", "both")

_SCHEMA = """
CREATE TABLE zuora (id TEXT PRIMARY KEY, number TEXT, link TEXT, email TEXT);
CREATE TABLE billing (id TEXT PRIMARY KEY, customer_id TEXT, zuora_ref TEXT, email TEXT, paired INTEGER DEFAULT 0);
CREATE INDEX zuora_number ON zuora (number);
CREATE INDEX zuora_link ON zuora (link);
CREATE INDEX zuora_email ON zuora (email);
CREATE INDEX billing_ref ON billing (zuora_ref);
CREATE INDEX billing_email ON billing (email);
"""


@dataclass(frozen=True)
class PlanItem:
    """One row of the plan (and of the CSV report)."""

    action: str
    reason: str
    zuora_id: str = ""
    zuora_number: str = ""
    billing_id: str = ""
    invoice_id: str = ""


def _email(value: object) -> str | None:
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def billing_zuora_ref(account: dict) -> str | None:
    """The Zuora account a billing account's ``zuora`` settings name (ID first, else number)."""
    found = {s.get("name"): s.get("value") for s in account.get("settings") or []
             if isinstance(s, dict) and s.get("namespace", SETTINGS_NAMESPACE) == SETTINGS_NAMESPACE}
    return _text(found.get("zuoraAccountId")) or _text(found.get("zuoraAccountNumber"))


class ScratchIndex:
    """Both tenants' accounts, reduced to what planning needs, in a temporary SQLite file."""

    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(prefix="integration-backfill-", suffix=".sqlite")
        os.close(handle)
        self.conn = sqlite3.connect(self.path)
        self.conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-4096;"
                                + _SCHEMA)

    def close(self) -> None:
        self.conn.close()
        os.unlink(self.path)

    def __enter__(self) -> ScratchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_zuora(self, rows: Iterable[dict], link_field: str, tick: Callable[[], None] = lambda: None) -> None:
        for row in rows:
            bill_to = row.get("billTo")
            contact: dict = bill_to if isinstance(bill_to, dict) else {}
            self.conn.execute("INSERT OR REPLACE INTO zuora VALUES (?, ?, ?, ?)",
                              (str(row["id"]), _text(row.get("accountNumber")), _text(row.get(link_field)),
                               _email(contact.get("workEmail") or contact.get("personalEmail"))))
            tick()
        self.conn.commit()

    def add_billing(self, rows: Iterable[dict], email_of: Callable[[dict], str | None],
                    tick: Callable[[], None] = lambda: None) -> None:
        for row in rows:
            self.conn.execute("INSERT OR REPLACE INTO billing (id, customer_id, zuora_ref, email) VALUES (?, ?, ?, ?)",
                              (str(row["id"]), _text(row.get("customerId")), billing_zuora_ref(row),
                               _email(email_of(row))))
            tick()
        self.conn.commit()

    def one(self, sql: str, *args: object) -> tuple | None:
        return self.conn.execute(sql, args).fetchone()

    def count(self, sql: str, *args: object) -> int:
        return int(self.conn.execute(sql, args).fetchone()[0])


class Planner:
    """Classifies the indexed accounts against the store's mapping table."""

    def __init__(self, db: Database, index: ScratchIndex, *, match_email: bool = False):
        self.db = db
        self.index = index
        self.match_email = match_email

    def plan(self, side: str = "both") -> Iterator[PlanItem]:
        """Every item, Zuora accounts first; ``side`` keeps the items that involve that side."""
        for item in self._zuora_items():
            if side != "billing" or item.billing_id:
                yield item
        if side != "zuora":
            yield from self._billing_items()

    # -- Zuora side ----------------------------------------------------------------------------------

    def _zuora_items(self) -> Iterator[PlanItem]:
        cursor = self.index.conn.cursor()
        for zid, number, link, email in cursor.execute("SELECT id, number, link, email FROM zuora ORDER BY id"):
            item = self._classify_zuora(zid, number or "", link, email)
            if item.billing_id:
                self.index.conn.execute("UPDATE billing SET paired = 1 WHERE id = ?", (item.billing_id,))
            yield item
        self.index.conn.commit()

    def _classify_zuora(self, zid: str, number: str, link: str | None, email: str | None) -> PlanItem:
        item = lambda action, reason, billing="": PlanItem(action, reason, zid, number, billing)  # noqa: E731
        mapping = mappings.find(self.db, "account", zuora_key=zid)
        if mapping is not None:
            return item("linked", "in the mapping table", mapping.billing_id)
        if link:
            return self._by_link_field(zid, number, link, item)
        named = self.index.conn.execute("SELECT id FROM billing WHERE zuora_ref IN (?, ?) LIMIT 2",
                                        (zid, number)).fetchall()
        if len(named) > 1:
            return item("conflict", f"billing accounts {named[0][0]} and {named[1][0]} both name it in their"
                                    " zuora settings")
        if named:
            return self._pair(zid, named[0][0], "its zuora settings name this account", item)
        if self.index.one("SELECT 1 FROM billing WHERE id = ?", zid):
            return self._pair(zid, zid, "the billing account has the Zuora account's ID", item)
        if self.match_email and email:
            twin = self._email_twin(email)
            if twin:
                return item("candidate", f"same bill-to email ({email}) as unlinked billing account {twin}", twin)
        return item("create_in_billing", "no billing account names it or has its ID")

    def _by_link_field(self, zid: str, number: str, link: str, item: Callable[..., PlanItem]) -> PlanItem:
        if self.index.one("SELECT 1 FROM billing WHERE id = ?", link) is None:
            return item("conflict", f"its link field names billing account {link}, which does not exist", link)
        claims = self.index.count("SELECT COUNT(*) FROM zuora WHERE link = ?", link)
        if claims > 1:
            return item("conflict", f"{claims} Zuora accounts name billing account {link} in their link field", link)
        return self._pair(zid, link, "its link field names the billing account", item, number=number)

    def _pair(self, zid: str, billing_id: str, reason: str, item: Callable[..., PlanItem], *,
              number: str | None = None) -> PlanItem:
        """``link`` unless the billing account is already someone else's twin."""
        if number is None:
            number = (self.index.one("SELECT number FROM zuora WHERE id = ?", zid) or ("",))[0] or ""
        holder = mappings.find(self.db, "account", billing_id=billing_id)
        if holder is not None:
            return item("conflict", f"billing account {billing_id} is already linked to Zuora account"
                                    f" {holder.zuora_id}", billing_id)
        ref = (self.index.one("SELECT zuora_ref FROM billing WHERE id = ?", billing_id) or (None,))[0]
        if ref and ref not in (zid, number):
            return item("conflict", f"billing account {billing_id} names Zuora account {ref} in its zuora settings",
                        billing_id)
        other = self.index.one("SELECT id FROM zuora WHERE link = ? AND id <> ?", billing_id, zid)
        if other:
            return item("conflict", f"Zuora account {other[0]} also claims billing account {billing_id}",
                        billing_id)
        return item("link", reason, billing_id)

    def _email_twin(self, email: str) -> str | None:
        """The one unlinked billing account with this email, when exactly one account on each side has it."""
        if self.index.count("SELECT COUNT(*) FROM zuora WHERE email = ?", email) != 1:
            return None
        rows = self.index.conn.execute(
            "SELECT b.id FROM billing b WHERE b.email = ? AND b.zuora_ref IS NULL AND b.paired = 0"
            " AND NOT EXISTS (SELECT 1 FROM zuora z WHERE z.link = b.id OR z.id = b.id) LIMIT 2",
            (email,)).fetchall()
        if len(rows) != 1 or mappings.find(self.db, "account", billing_id=rows[0][0]) is not None:
            return None
        return str(rows[0][0])

    # -- billing side --------------------------------------------------------------------------------

    def _billing_items(self) -> Iterator[PlanItem]:
        cursor = self.index.conn.cursor()
        for bid, ref in cursor.execute("SELECT id, zuora_ref FROM billing WHERE paired = 0 ORDER BY id"):
            mapping = mappings.find(self.db, "account", billing_id=bid)
            if mapping is not None:
                yield PlanItem("linked", "in the mapping table", mapping.zuora_id, mapping.zuora_number or "", bid)
            elif ref:
                known = self.index.one("SELECT id, number FROM zuora WHERE id = ? OR number = ?", ref, ref)
                reason = (f"its zuora settings name Zuora account {ref}, which does not exist" if known is None
                          else f"its zuora settings name Zuora account {ref}, which is linked elsewhere")
                yield PlanItem("conflict", reason, ref if known else "", "", bid)
            else:
                yield PlanItem("create_in_zuora", "no Zuora account names it or has its ID", billing_id=bid)
