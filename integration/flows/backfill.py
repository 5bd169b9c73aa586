"""Planning ``integration backfill`` (CONTRACT §9): what to do with every account of a tenant pair that
already has data.

Memory stays flat with the number of accounts. Both tenants are *streamed* (Zuora Object Query and
Togai's ``GET /accounts``, one page at a time) into a scratch SQLite file on disk
(``integration.store.backfill_index.ScratchIndex``, a temporary file deleted afterwards) that holds
only what classification needs per account: IDs, the link (Zuora's ``ZUORA_LINK_FIELD``; the billing
account's ``zuora`` settings), and the bill-to email.
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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from integration.billing.model import BillingAccount
from integration.store import mappings
from integration.store.backfill_index import ScratchIndex
from integration.store.db import Database
from integration.zuora.model import ZuoraAccount

ACTIONS = ("linked", "link", "create_in_billing", "create_in_zuora", "conflict", "candidate", "push_invoice")
SIDES = ("zuora", "billing", "both")


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


def billing_zuora_ref(account: BillingAccount) -> str | None:
    """The Zuora account a listed billing account's link names (ID first, else number)."""
    return account.link.zuora_ref if account.link is not None else None


def index_zuora(index: ScratchIndex, rows: Iterable[ZuoraAccount], link_field: str,
                tick: Callable[[], None] = lambda: None) -> None:
    """Stream Zuora Object Query rows into the index (the bill-to email when ``expand[]=billTo``)."""
    def reduced() -> Iterator[tuple[str, str | None, str | None, str | None]]:
        for row in rows:
            contact = row.bill_to
            yield (row.id, _text(row.number), _text(row.custom_field(link_field)),
                   _email((contact.work_email or contact.personal_email) if contact else None))
    index.add_zuora(reduced(), tick)


def index_billing(index: ScratchIndex, rows: Iterable[BillingAccount],
                  email_of: Callable[[BillingAccount], str | None], tick: Callable[[], None] = lambda: None) -> None:
    """Stream billing accounts (with their inline link) into the index."""
    index.add_billing(((row.id, billing_zuora_ref(row), _email(email_of(row))) for row in rows), tick)


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
        for zid, number, link, email in self.index.zuora_accounts():
            item = self._classify_zuora(zid, number or "", link, email)
            if item.billing_id:
                self.index.mark_paired(item.billing_id)
            yield item
        self.index.commit()

    def _classify_zuora(self, zid: str, number: str, link: str | None, email: str | None) -> PlanItem:
        def item(action: str, reason: str, billing: str = "") -> PlanItem:
            return PlanItem(action, reason, zid, number, billing)

        mapping = mappings.find(self.db, "account", zuora_key=zid)
        if mapping is not None:
            return item("linked", "in the mapping table", mapping.billing_id)
        if link:
            return self._by_link_field(zid, number, link, item)
        named = self.index.billing_naming(zid, number)
        if len(named) > 1:
            return item("conflict", f"billing accounts {named[0]} and {named[1]} both name it in their"
                                    " zuora settings")
        if named:
            return self._pair(zid, named[0], "its zuora settings name this account", item)
        if self.index.billing_exists(zid):
            return self._pair(zid, zid, "the billing account has the Zuora account's ID", item)
        if self.match_email and email:
            twin = self._email_twin(email)
            if twin:
                return item("candidate", f"same bill-to email ({email}) as unlinked billing account {twin}", twin)
        return item("create_in_billing", "no billing account names it or has its ID")

    def _by_link_field(self, zid: str, number: str, link: str, item: Callable[..., PlanItem]) -> PlanItem:
        if not self.index.billing_exists(link):
            return item("conflict", f"its link field names billing account {link}, which does not exist", link)
        claims = self.index.link_claims(link)
        if claims > 1:
            return item("conflict", f"{claims} Zuora accounts name billing account {link} in their link field", link)
        return self._pair(zid, link, "its link field names the billing account", item, number=number)

    def _pair(self, zid: str, billing_id: str, reason: str, item: Callable[..., PlanItem], *,
              number: str | None = None) -> PlanItem:
        """``link`` unless the billing account is already someone else's twin."""
        if number is None:
            number = self.index.zuora_number(zid)
        holder = mappings.find(self.db, "account", billing_id=billing_id)
        if holder is not None:
            return item("conflict", f"billing account {billing_id} is already linked to Zuora account"
                                    f" {holder.zuora_id}", billing_id)
        ref = self.index.billing_ref(billing_id)
        if ref and ref not in (zid, number):
            return item("conflict", f"billing account {billing_id} names Zuora account {ref} in its zuora settings",
                        billing_id)
        other = self.index.other_claimer(billing_id, zid)
        if other:
            return item("conflict", f"Zuora account {other} also claims billing account {billing_id}",
                        billing_id)
        return item("link", reason, billing_id)

    def _email_twin(self, email: str) -> str | None:
        """The one unlinked billing account with this email, when exactly one account on each side has it."""
        if self.index.zuora_with_email(email) != 1:
            return None
        rows = self.index.free_billing_with_email(email)
        if len(rows) != 1 or mappings.find(self.db, "account", billing_id=rows[0]) is not None:
            return None
        return rows[0]

    # -- billing side --------------------------------------------------------------------------------

    def _billing_items(self) -> Iterator[PlanItem]:
        for bid, ref in self.index.unpaired_billing():
            mapping = mappings.find(self.db, "account", billing_id=bid)
            if mapping is not None:
                yield PlanItem("linked", "in the mapping table", mapping.zuora_id, mapping.zuora_number or "", bid)
            elif ref:
                known = self.index.zuora_exists(ref)
                reason = (f"its zuora settings name Zuora account {ref}, which is linked elsewhere" if known
                          else f"its zuora settings name Zuora account {ref}, which does not exist")
                yield PlanItem("conflict", reason, ref if known else "", "", bid)
            else:
                yield PlanItem("create_in_zuora", "no Zuora account names it or has its ID", billing_id=bid)
